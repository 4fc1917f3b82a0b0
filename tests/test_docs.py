"""The README and docs/: facts come from the code or a generated block (never typed), and the README stays a front
door. That links, paths, command lines and Python names resolve: tests/test_references.py."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GENERATED = ("fidelity", "reproduction", "speed", "baselines", "benchmarks", "sweep-scaling", "layout", "fingerprinted",
             "calibration", "standins", "sweep-example", "config-fields", "glossary", "cpu-references",
             "cpu-references-sweeps")


def _text(p: Path) -> str:
    return p.read_text()


def test_the_readmes_command_table_names_real_subcommands():
    from dynnn_lib.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    named = set(re.findall(r"^\| `dynnn (\S+?)`", _text(ROOT / "README.md"), flags=re.M))
    named |= set(re.findall(r"`dynnn (\w[\w-]*)`", _text(ROOT / "README.md")))
    assert named and named <= set(sub.choices), named - set(sub.choices)
    assert set(sub.choices) <= named, f"subcommands the README's table does not list: {set(sub.choices) - named}"


def test_the_readme_is_a_front_door():
    text = _text(ROOT / "README.md")
    assert len(text.splitlines()) <= 190
    assert "## Two commands" in text and "## Where to go next" in text
    assert text.index("A five-minute tour") < text.index("Where to go next")
    # the measured tables live in docs/ and the README links to them, but for the two that say whether the stand-in
    # can be trusted (issue 18: shown where people look)
    assert set(re.findall(r"<!-- BEGIN (\S+) -->", text)) == {"calibration", "standins"}


def test_every_generated_block_lives_in_exactly_one_document():
    for name in GENERATED:
        holders = [p.name for p in DOCS if f"<!-- BEGIN {name} -->" in _text(p) and f"<!-- END {name} -->" in _text(p)]
        assert len(holders) == 1, f"block {name}: {holders}"


def test_the_blocks_that_come_from_the_code_are_current():
    """`dynnn readme` fills them from the code; a stale one (a folder or a fingerprinted module added) fails here."""
    from dynnn_lib.reports.readme import code_blocks, fill

    for p in DOCS:
        text = _text(p)
        wanted = {k: v for k, v in code_blocks().items() if f"<!-- BEGIN {k} -->" in text}
        assert fill(text, wanted) == text, f"{p.name}: run `dynnn readme --code-only`"


def test_facts_about_the_model_and_the_stream_match_the_code():
    import torch.nn as nn

    from dynnn_lib.core.config import EMBEDDED_TASKS, DataConfig, RunConfig
    from dynnn_lib.model.network import build_trunk_and_head

    trunk, head = build_trunk_and_head(RunConfig(pretrained=False), 10)
    blocks = [m for m in [*trunk.modules(), *head.modules()] if isinstance(m, nn.GroupNorm)]
    head_blocks = [m for m in head.modules() if isinstance(m, nn.GroupNorm)]
    words = {2: "two", 3: "three", 4: "four"}
    method = _text(ROOT / "docs" / "method.md")
    assert f"`small` ({len(blocks)} GroupNorm conv blocks)" in method
    assert f"last {words[len(head_blocks)]} conv stages" in method
    readme = " ".join(_text(ROOT / "README.md").split())
    d = DataConfig()
    assert f"{EMBEDDED_TASKS} tasks of {d.n_classes} generated objects" in readme
    assert f"{len(list((ROOT / 'notebooks').glob('[0-9]*.py')))} tutorial notebooks" in readme
    assert f"stand-in, `{d.stream}` by default" in readme
    bench = " ".join(_text(ROOT / "docs" / "benchmark.md").split())
    for fact in (f"{d.n_classes} object classes", f"rendered at {d.image_size}×{d.image_size}",
                 f"The {EMBEDDED_TASKS} tasks", f"{d.train_per_class} training and {d.test_per_class} test images"):
        assert fact in bench, fact


def test_the_documented_defaults_are_the_codes():
    """docs/method.md's table of open choices: each default is the one RunConfig, DataConfig or DynamicNN's Params
    holds (a typed number that drifted from the code fails here)."""
    import dataclasses

    from dynnn_lib.core.config import DataConfig, RunConfig
    from dynnn_lib.methods.dynamicnn import Params

    defaults = {**{f"data.{k}": v for k, v in dataclasses.asdict(DataConfig()).items()},
                **{f"data.{k}": v for k, v in DataConfig().params.items()},  # the generated stream's own
                **dataclasses.asdict(Params()), **{k: v for k, v in RunConfig().to_dict().items() if k != "data"}}
    method = _text(ROOT / "docs" / "method.md")
    rows = re.findall(r"^\| (`[\w.]+`(?:, `[\w.]+`)*) \| `?([^|`]+?)`?(?: \(.*?\))? \|", method, flags=re.M)
    checked = 0
    for names, value in rows:
        names = re.findall(r"`([\w.]+)`", names)
        if not all(n in defaults for n in names):
            continue
        values = [v.strip() for v in value.split(",")]
        for n, v in zip(names, values):
            expected = defaults[n]
            shown = {True: "true", False: "false"}.get(expected, str(expected)) if isinstance(expected, bool) \
                else str(expected)
            assert v == shown, f"docs/method.md says {n} defaults to {v}; the code: {expected!r}"
            checked += 1
    assert checked >= 10
    cfg = RunConfig()
    assert (f"lr {cfg.base_lr}" in method and f"base {cfg.base_epochs} epochs @{list(cfg.base_milestones)}" in method
            and f"incremental {cfg.inc_epochs} epochs @{list(cfg.inc_milestones)}" in method), "the optimiser row"


def test_timing_blocks_say_which_machine_and_that_machines_differ():
    from dynnn_lib.workbench.plan import REFERENCE_TASK_S

    spread = max(REFERENCE_TASK_S.values()) / min(REFERENCE_TASK_S.values())  # the per-task references' range
    for p in DOCS:
        text = _text(p)
        if any(f"<!-- BEGIN {b} -->" in text for b in ("speed", "sweep-scaling")):
            assert "CPU model and family" in text and f"up to {spread:.1f}x" in text, p.name
    from dynnn_lib.core.fingerprint import machine_line

    assert "family" in machine_line(1)


# Words about how the workbench was built (tasks, work sessions, machines lent) have no place in what a user reads.
# (words may be split across a wrapped line and its indentation: "the\n  issue")
BUILDER_WORDS = re.compile(r"\bthe\s+issue\b|\bissues?\s+\d+\b|\(issue\b|\bmoonshot\b|\blent\b|\bthis\s+session\b|"
                           r"\bsessions?\b|\bthe\s+brief\b|\bthe\s+lead\b", flags=re.I)


def _user_facing_texts():
    """README, docs/, notebooks, reports/README.md, the Makefile, parameter files, and every string literal of the
    package and the benchmark scripts (help texts, report prose, docstrings); comments in the code are not read."""
    import ast

    for p in [*DOCS, *sorted((ROOT / "notebooks").glob("*.py")), ROOT / "reports" / "README.md", ROOT / "Makefile",
              *sorted((ROOT / "params").glob("*.yaml")), ROOT / "environment.yml", ROOT / "pyproject.toml"]:
        if p.exists():
            yield p.relative_to(ROOT), _text(p)
    for p in [*sorted((ROOT / "dynnn_lib").rglob("*.py")), *sorted((ROOT / "benchmarks").glob("*.py"))]:
        for node in ast.walk(ast.parse(_text(p))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield f"{p.relative_to(ROOT)}:{node.lineno}", node.value


def test_no_builder_words_in_user_facing_text():
    hits = [f"{where}: {m.group(0)!r}" for where, text in _user_facing_texts() for m in BUILDER_WORDS.finditer(text)]
    assert not hits, "words about how the workbench was built, in what users read:\n" + "\n".join(hits)


def test_the_builder_word_check_catches_them():
    for phrase in ("as the issue asked", "see issue 12", "No GPU was lent to this session", "the moonshot",
                   "measured by the\n  issue"):
        assert BUILDER_WORDS.search(phrase), phrase
    for phrase in ("a known problem", "the paper's claims", "the lens of the camera", "issued"):
        assert not BUILDER_WORDS.search(phrase), phrase


def test_the_command_lines_help_lists_every_command():
    """`dynnn --help`'s first line is built from the registered subcommands, never typed."""
    from dynnn_lib.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert all(name in parser.description for name in sub.choices)
    assert parser.description.count(" | ") == len(sub.choices) - 1


def test_the_layout_block_lists_the_folders_in_import_order():
    from dynnn_lib.reports.readme import LAYERS, code_blocks

    listed = re.findall(r"^dynnn_lib/(\w+)", code_blocks()["layout"], flags=re.M)
    assert listed == [x for x in LAYERS if (ROOT / "dynnn_lib" / x).is_dir()] + ["cli"]
    assert "dynnn_lib/data/" in _text(ROOT / "docs" / "layout.md")


def test_docs_show_the_shipped_sweep_file():
    """docs/sweeps.md's example is the file in params/, copied by `dynnn readme` (a stale copy fails above)."""
    sweeps = _text(ROOT / "docs" / "sweeps.md")
    shipped = _text(ROOT / "params" / "sweep_example.yaml").strip()
    block = re.search(r"<!-- BEGIN sweep-example -->\n(.*?)<!-- END sweep-example -->", sweeps, flags=re.S).group(1)
    assert shipped in block


def test_no_reference_to_a_name_the_code_does_not_define():
    """A constant named in the docs (`NAME` in `path.py`) exists there."""
    for where, text in [(p.name, _text(p)) for p in DOCS] + [("Makefile", _text(ROOT / "Makefile"))] + \
            [(p.name, _text(p)) for p in sorted((ROOT / "notebooks").glob("*.py"))]:
        for name, path in re.findall(r"`?([A-Z][A-Z_]{3,})`? in `?((?:dynnn_lib/)?[\w/]+\.py)`?", text):
            f = ROOT / path if path.startswith("dynnn_lib/") else ROOT / "dynnn_lib" / path
            assert f.exists() and re.search(rf"^{name}\b", _text(f), flags=re.M), f"{where}: {name} in {path}"


def test_the_research_page_lists_every_configuration_field_from_the_dataclasses():
    """docs/research.md's field table is generated from RunConfig and DataConfig (freshness: the code-blocks test
    above); every field is there with the code's default."""
    import dataclasses

    from dynnn_lib.core.config import DataConfig, RunConfig

    page = _text(ROOT / "docs" / "research.md")
    block = re.search(r"<!-- BEGIN config-fields -->\n(.*?)<!-- END config-fields -->", page, flags=re.S).group(1)
    rows = dict(re.findall(r"^\| `([\w.]+)` \| `[^`]*` \| ([^|]+) \|", block, flags=re.M))
    fields = [f.name for f in dataclasses.fields(RunConfig) if f.name != "data"] + \
        [f"data.{f.name}" for f in dataclasses.fields(DataConfig)]
    assert list(rows) == fields
    assert rows["base_epochs"].strip() == f"`{RunConfig().base_epochs}`"
    assert rows["data.decide_on"].strip() == f"`{DataConfig().decide_on}`"
    assert "[research.md](research.md)" in _text(ROOT / "docs" / "README.md")
    assert "docs/research.md" in _text(ROOT / "README.md")


def test_the_research_page_says_the_scenario():
    """(How to cite, and CITATION.cff beside the BibTeX entries: tests/test_citation.py.)"""
    page = " ".join(_text(ROOT / "docs" / "research.md").split())
    assert "Domain-incremental" in page and "same object classes" in page and "not given" in page


@pytest.mark.skipif(not __import__("shutil").which("make"), reason="needs make")
def test_make_setup_takes_the_cpu_wheel_index_and_a_conda_environment(tmp_path):
    """`make setup TORCH_INDEX=...` installs the pyproject's torch pins from that index first; a VENV that is a
    conda environment is installed into, never replaced by a new venv (dry run: nothing is installed)."""
    import subprocess

    pins = re.findall(r'"(torch(?:vision)?==[^"]+)"', _text(ROOT / "pyproject.toml"))
    conda = tmp_path / "env"
    (conda / "conda-meta").mkdir(parents=True)
    out = subprocess.run(["make", "-n", "setup", f"VENV={conda}", "TORCH_INDEX=https://download.pytorch.org/whl/cpu"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert f"pip install -q {' '.join(pins)} --index-url https://download.pytorch.org/whl/cpu" in out
    assert len(pins) == 2
    script = next(l for l in out.replace("\\\n", " ").splitlines() if "conda-meta" in l)
    shown = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert "conda environment" in shown and not (conda / "pyvenv.cfg").exists()
    plain = subprocess.run(["make", "-n", "setup", f"VENV={tmp_path / 'v'}"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout
    assert "--index-url" not in plain


def test_the_front_door_states_the_codes_device_default_and_pins():
    from dynnn_lib.core.config import RunConfig

    readme = " ".join(_text(ROOT / "README.md").split())
    assert f"(`device: {RunConfig().device}`)" in readme
    import torch

    here = "cuda" if torch.cuda.is_available() else "cpu"  # the README: the key holds the device a run trains on
    assert RunConfig(device="auto").key() == RunConfig(device=here).key() != RunConfig(device="cuda" if here == "cpu"
                                                                                        else "cpu").key()
    for pin in re.findall(r'"(torch(?:vision)?==[^"]+)"', _text(ROOT / "pyproject.toml")):
        assert f"`{pin}`" in readme, pin
