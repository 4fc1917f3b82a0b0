"""Three kinds of page, one verdict per claim, terms defined once.

* *Guide* pages (README.md, docs/*.md but the results pages) state no result by hand: a number with a decimal point
  sits inside a generated block (``<!-- BEGIN name -->``) or is a configuration value the code holds.
* *Results* pages (:data:`RESULTS`) hold their numbers in generated blocks only, each block headed by its machine.
* *Journal* entries (docs/journal/YYYY-MM-DD-topic.md) are dated, each with its provenance line, and indexed.
* A claim is judged once, in the fidelity block of docs/fidelity.md; elsewhere it is a link or a verdict on another
  stand-in, never a second verdict on the default one.
* Every metric a generated table's header names links to its glossary entry, and the glossary defines every anchor.
"""
import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = ("fidelity.md", "speed.md")
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
GUIDES = [p for p in PAGES if p.name not in RESULTS]
BLOCK = re.compile(r"<!-- BEGIN (\S+) -->\n.*?<!-- END \1 -->", re.S)
# a number with a decimal point, not part of a word, a path, a version range or a longer number
DECIMAL = re.compile(r"(?<![\w.`/@-])[-+−]?\d+\.\d+(?![\w.]|\.\d)")
ARXIV = re.compile(r"\b\d{4}\.\d{4,5}\b")


def _blank(match: re.Match) -> str:
    return "\n" * match.group(0).count("\n")


def hand_typed(text: str) -> list[tuple[int, str]]:
    """(line, number) of every number with a decimal point outside generated blocks, code fences, inline code and
    link targets that is not a configuration value of the code."""
    text = BLOCK.sub(_blank, text)
    text = re.sub(r"^```.*?^```", _blank, text, flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = ARXIV.sub("", text)
    allowed = config_values()
    return [(i, n) for i, line in enumerate(text.splitlines(), 1) for n in DECIMAL.findall(line)
            if float(n.replace("−", "-")) not in allowed]


_CONFIG: set[float] = set()


def config_values() -> set[float]:
    """Every float the code sets as a default or a constant (dataclass fields, keyword defaults, module-level
    UPPER_CASE names), in the shipped YAML files (stand-ins, parameters) and the Python version pyproject requires:
    what a guide page may quote as configuration. Derived, never typed."""
    if _CONFIG:
        return _CONFIG
    for path in (ROOT / "dynnn_lib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            values = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                values = [*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]]
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                values = [node.value]
            elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
                values = [node.value]
            for v in values:
                _CONFIG.update(_floats(v))
    for path in [*(ROOT / "dynnn_lib").rglob("*.yaml"), *(ROOT / "params").glob("*.yaml")]:
        _CONFIG.update(_yaml_floats(yaml.safe_load(path.read_text())))
    python = re.search(r'requires-python\s*=\s*">=(\d+\.\d+)"', (ROOT / "pyproject.toml").read_text())
    _CONFIG.add(float(python.group(1)))
    return _CONFIG


def _floats(node: ast.AST) -> list[float]:
    """The float literals of an expression (a tuple or dict of them included), negative ones as written."""
    out = []
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, float):
            out += [n.value, -n.value]
    return out


def _yaml_floats(value) -> list[float]:
    if isinstance(value, dict):
        return [f for v in value.values() for f in _yaml_floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _yaml_floats(v)]
    return [float(value)] if isinstance(value, float) else []


@pytest.mark.parametrize("page", GUIDES, ids=lambda p: p.name)
def test_a_guide_page_states_no_result_by_hand(page):
    found = hand_typed(page.read_text())
    assert not found, f"{page.name}: numbers outside a generated block that the code does not hold: {found}"


@pytest.mark.parametrize("page", [DOCS / n for n in RESULTS], ids=lambda p: p.name)
def test_a_results_page_holds_its_numbers_in_generated_blocks_with_their_machine(page):
    text = page.read_text()
    assert not hand_typed(text), f"{page.name}: {hand_typed(text)}"
    for m in BLOCK.finditer(text):
        if "|" in m.group(0) and not m.group(1).startswith("cpu-references"):
            assert re.search(r"(Machine:|Measured .* on) .*CPU family", m.group(0)) or "Machine: " in m.group(0), \
                f"{page.name}: block {m.group(1)} names no machine"


def test_the_number_check_catches_a_hand_typed_result_and_spares_configuration():
    text = ("The square is 93.11 here.\n<!-- BEGIN x -->\n95.90\n<!-- END x -->\n`make all` at `0.5`; python 3.10; "
            "lr 0.003; arXiv 1911.06487; [a](b/1.2.md)\n```\n4.18\n```\n")
    assert hand_typed(text) == [(1, "93.11")]


# ------------------------------------------------------------------ the journal
JOURNAL = sorted((DOCS / "journal").glob("*.md"))
ENTRIES = [p for p in JOURNAL if p.name != "README.md"]


def test_every_journal_entry_is_dated_with_its_provenance_and_indexed():
    index = (DOCS / "journal" / "README.md").read_text()
    assert ENTRIES
    for p in ENTRIES:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-[a-z0-9-]+\.md", p.name), p.name
        text = p.read_text()
        assert text.startswith(f"# {p.name[:10]}"), f"{p.name}: the title starts with its date"
        prov = next((para for para in text.split("\n\n") if para.startswith("Provenance:")), "")
        assert re.search(r"\b[0-9a-f]{7,40}\b", prov) and "machine" in prov.lower(), \
            f"{p.name}: a paragraph 'Provenance:' names the commit and the machine: {prov!r}"
        assert f"]({p.name})" in index, f"docs/journal/README.md does not list {p.name}"
        for c in re.findall(r"^> Correction \((\S+)\):", text, flags=re.M):
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", c), f"{p.name}: a correction is dated"


# ------------------------------------------------------------------ one claim, one verdict
VERDICT = re.compile(r"\b(not held|held|equivalent|inconclusive)\b")


def _block(text: str, name: str) -> str:
    m = re.search(rf"<!-- BEGIN {name} -->\n(.*?)<!-- END {name} -->", text, re.S)
    return m.group(1) if m else ""


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def judged() -> dict[str, str]:
    """Claim -> verdict, from the one place a claim is judged: the fidelity block of docs/fidelity.md."""
    rows = [_cells(l) for l in _block((DOCS / "fidelity.md").read_text(), "fidelity").splitlines()
            if l.startswith("| ")]
    col = next(i for i, c in enumerate(rows[0]) if "verdict" in c)
    return {r[0]: r[col].strip("*") for r in rows[1:]}


def second_verdicts(pages: dict[str, str], verdicts: dict[str, str], default: str) -> list[str]:
    """Every place outside the fidelity block that gives a judged claim a verdict on the default stand-in: a table
    cell under a header naming the default stand-in or "verdict", or a line of prose with a verdict word (a prose
    mention must be a link, without a verdict)."""
    out = []
    for name, text in pages.items():
        if name.endswith("fidelity.md"):
            text = text.replace(_block(text, "fidelity"), "")
        header: list[str] = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.startswith("|"):
                header = []
            claims = [c for c in verdicts if c in line]
            if line.startswith("|") and not header:
                header = _cells(line)
                continue
            for c in claims:
                if line.startswith("|"):
                    cells = _cells(line)
                    for h, cell in zip(header, cells):
                        if (f"`{default}`" in h and "differs" not in h or "verdict" in h.lower() and "`" not in h) \
                                and VERDICT.search(cell) and VERDICT.search(cell).group(1) != verdicts[c]:
                            out.append(f"{name}:{i}: {c!r} is {cell.strip('*')} here, {verdicts[c]} in docs/fidelity.md")
                elif VERDICT.search(line.split(c, 1)[1][:80]):
                    out.append(f"{name}:{i}: {c!r} gets a verdict in prose; link to docs/fidelity.md instead")
    return out


def test_one_claim_one_verdict_across_the_pages():
    from dynnn_lib.core.config import DataConfig

    verdicts = judged()
    assert len(verdicts) >= 10
    pages = {str(p.relative_to(ROOT)): p.read_text() for p in PAGES}
    assert len(pages) == len(PAGES) and not second_verdicts(pages, verdicts, DataConfig().stream)


def test_the_verdict_check_catches_a_second_verdict():
    verdicts = {"the frozen trunk costs plasticity": "inconclusive"}
    old = ("| the paper's claim | the paper | `round1-calibrated` | `round1` | depends on the stand-in |\n|---|---|---|---|---|\n"
           "| the frozen trunk costs plasticity | 99.87 vs 97.24 | held | held | no |\n\n"
           "* **the frozen trunk costs plasticity**: +1.36, held.\n")
    found = second_verdicts({"README.md": old}, verdicts, "round1-calibrated")
    assert len(found) == 2 and "README.md:3" in found[0] and "prose" in found[1]
    new = old.replace("`round1-calibrated` | `round1`", "`round1` | `round1`").splitlines()[:3]
    assert not second_verdicts({"README.md": "\n".join(new)}, verdicts, "round1-calibrated")


def test_the_fidelity_block_is_the_claims_of_the_code():
    """The claims judged on the page are the code's: every claim the fidelity module can state is in the block."""
    from dynnn_lib.experiments import fidelity

    source = Path(fidelity.__file__).read_text()
    for claim in judged():
        head = re.split(r"[(:]", claim)[0].strip()
        stem = head.split(" ")[-1]
        assert stem in source, f"the fidelity block's claim {claim!r} is not stated by experiments/fidelity.py"


# ------------------------------------------------------------------ terms defined once
def test_every_glossary_link_lands_on_a_term_the_code_defines():
    glossary = (DOCS / "glossary.md").read_text()
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', glossary))
    assert {"bwt-all-pairs", "bwt-final-row", "square", "final-row", "diagonal", "skill", "verdict"} <= anchors
    links = 0
    for p in [*PAGES, *JOURNAL]:
        for a in re.findall(r"glossary\.md#([\w-]+)", p.read_text()):
            assert a in anchors, f"{p.name}: glossary.md#{a} is not an entry"
            links += 1
    assert links >= 10


def test_every_generated_table_header_that_names_a_term_links_to_the_glossary():
    from dynnn_lib.reports.glossary import term

    for p in PAGES:
        for m in BLOCK.finditer(p.read_text()):
            if m.group(1) in ("glossary", "config-fields", "speed", "benchmarks"):
                continue
            lines = m.group(0).splitlines()
            headers = [lines[i] for i in range(len(lines) - 1) if lines[i].startswith("|") and
                       set(lines[i + 1]) <= set("|-") and lines[i + 1]]
            for h in headers:
                for cell in _cells(h):
                    assert cell not in ("BWT", "FWT"), f"{p.name} block {m.group(1)}: say which {cell}"
                    assert term(cell) == cell or "glossary.md#" in cell, \
                        f"{p.name} block {m.group(1)}: header {cell!r} does not link to the glossary"


def test_the_two_bwts_differ_and_the_glossary_says_so():
    from dynnn_lib.evaluation.metrics import bwt
    from dynnn_lib.experiments.fidelity import bwt_final
    from dynnn_lib.reports.glossary import glossary_block

    m = [[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [1.0, 0.5, 1.0]]
    assert bwt(m) != bwt_final(m)  # all pairs (-1/3) against the final row (-1/4)
    block = glossary_block()
    assert "BWT (all pairs)" in block and "BWT (final row)" in block and "Lopez-Paz" in block
    assert "FWT" not in block.replace("fwt", "")


def test_a_fit_with_steps_is_never_called_by_its_first_trial_alone():
    from dynnn_lib.reports.blocks import fit_name

    assert fit_name({"after": {"trial": 14}}) == "trial 14"
    assert fit_name({"after": {"trial": 14}, "steps": [{}, {}, {}, {}]}) == "trial 14 then 4 fit steps"


def test_a_machine_without_a_cpu_family_says_so():
    from dynnn_lib.reports.blocks import machine_line

    assert "CPU family not recorded" in machine_line({"cpu": "AMD EPYC", "cores": 2, "date": "2026-11-25"})
    line = machine_line({"cpu": "AMD EPYC", "cpu_family": "25", "line": "AMD EPYC (CPU family 25, model 1), 2 cores",
                         "date": "2026-12-07", "commit": "0123456789abcdef"})
    assert "not recorded" not in line and line.endswith("at commit 0123456789.")


def test_every_block_with_measured_metrics_names_its_instances_and_seeds():
    """One metric, one value per design: the same finetune square differs between blocks only because their designs
    differ (evaluation instances 1-3, 1-6, the reproduction's one instance), so each block that shows a measured
    metric says which instances and seeds it is over; two blocks' numbers are never read as one."""
    measured = re.compile(r"\d+\.\d+ ± \d")
    shown = 0
    for p in PAGES:
        for m in BLOCK.finditer(p.read_text()):
            if measured.search(m.group(0)):
                shown += 1
                assert "instance" in m.group(0).lower() and "seed" in m.group(0).lower(), \
                    f"{p.name} block {m.group(1)}: shows measured metrics without naming its instances and seeds"
    assert shown >= 3


def test_the_baselines_block_names_its_stand_in_and_instance_and_links_its_terms():
    from dynnn_lib.reports.blocks import baselines_md

    row = {"metrics": {k: (0.9, 0.01) for k in ("overall", "final", "bwt")}, "marks": []}
    doc = {"methods": {"finetune": row}, "machine": {"line": "CPU (CPU family 25, model 1)", "date": "2026-12-07"},
           "commits": ["0123456789"], "seeds": 3, "ours": "finetune", "head_rule": "router",
           "stream": "round1-calibrated", "instance": 1}
    md = baselines_md(doc)
    assert "on stand-in `round1-calibrated`, instance 1," in md and "[BWT (all pairs)](glossary.md#bwt-all-pairs)" in md
    assert "not recorded" in baselines_md({k: v for k, v in doc.items() if k not in ("stream", "instance")})


BARE = re.compile(r"\bBWT\b(?! \(all pairs\)| \(final row\)|, final row)|\bFWT\b")


def test_no_page_says_bwt_or_fwt_without_saying_which():
    """Two backward transfers are in use, and the code's `fwt` is no forward transfer: a page names them by their
    glossary names (the journal keeps its own words, as written then)."""
    found = [f"{p.name}:{i}" for p in PAGES if p.name != "glossary.md"  # where the names are explained
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if BARE.search(re.sub(r"`[^`]*`", "", line))]
    assert not found, f"a bare BWT or FWT: {found}"
    assert BARE.search("BWT < 0 means forgetting") and not BARE.search("BWT (all pairs) < 0; (BWT, final row)")
