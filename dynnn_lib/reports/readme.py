"""Regenerate the generated blocks of the README and docs/ from the reports and the code, so no number or list
in them is typed by hand::

    dynnn readme [--readme README.md] [--docs docs] [--reports reports]   (make readme, after make all / make speed)

A block is the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->``, in whichever of README.md and
``docs/*.md`` holds it (each block lives in one file). Some come from the code itself (:func:`code_blocks`):

* ``layout``       - the package's folders, a line each, from each folder's ``__init__`` docstring;
* ``fingerprinted`` - the modules whose code is in every run's cache key (``core.fingerprint.shared_modules``, derived);
* ``glossary``     - every metric and verdict a table shows, defined from the code that computes it (reports/glossary.py).

Each registered experiment's blocks are rendered from its JSON document alone (its ``blocks``:
experiments/catalogue.py; the renderers in reports/blocks.py), e.g. ``fidelity``, ``standins``, ``calibration``,
``reproduction``, ``baselines``; a document of another schema version is refused in one line. The benchmarks'
blocks are filled from their own reports:

* ``speed``        - reports/speed.md (throughput, profile, per-run times, make all's phases);
* ``baselines``    - reports/baselines.md (``make baselines``: DynamicNN beside LwF, EWC, replay, joint);
* ``benchmarks``   - the in-workbench-vs-Avalanche table of reports/benchmarks.md (``make bench``);
* ``sweep-scaling`` - reports/sweep_scaling.json (``python benchmarks/sweep_scaling.py``: 1 vs 2 Ray workers).

A block whose report is missing is left as it is (and named), so `make bench` then `make readme` refreshes the
benchmarks block alone.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from dynnn_lib.core.errors import DynnnError
from dynnn_lib.core.machines import REFERENCES
from dynnn_lib.core.store import atomic_text
from dynnn_lib.reports.blocks import checked


def _section(md: str, title: str) -> str:
    """The body of the '## title' section of a Markdown report."""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", md, flags=re.S | re.M)
    if not m:
        raise DynnnError(f"the report has no section '## {title}'; regenerate it with make all")
    return m.group(1).strip()


def document(exp: Any, reports: Path) -> dict[str, Any] | None:
    """A registered experiment's document from `reports` (None when absent), checked against its schema: a
    renderer reads only this."""
    if not exp.document:
        return None
    path = Path(reports) / exp.document
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DynnnError(f"{path} is not valid JSON ({e}); regenerate it (make all)") from None
    return checked(doc, exp.schema, str(path))


def render_blocks(reports: Path, missing: list[str] | None = None) -> dict[str, str]:
    """Block name -> text, for every registered experiment (core/registry.EXPERIMENTS) whose document exists in
    `reports`; the absent documents' names go to `missing`."""
    from dynnn_lib.core.registry import EXPERIMENTS

    out: dict[str, str] = {}
    for exp in EXPERIMENTS.available().values():
        if not exp.blocks:
            continue
        doc = document(exp, reports)
        if doc is None:
            if missing is not None:
                missing.append(str(exp.document))
            continue
        out.update({name: render(doc) for name, render in exp.blocks.items()})
    return out


def blocks(reports: Path, missing: list[str] | None = None) -> dict[str, str]:
    """Block name -> its text, for every block whose document or report exists; the names of the others go to `missing`
    (their blocks are left as they are: e.g. after `make bench` alone only the benchmarks block changes)."""
    missing = [] if missing is None else missing

    def have(*names: str) -> bool:
        absent = [n for n in names if not (reports / n).exists()]
        missing.extend(absent)
        return not absent

    def read(name: str) -> str:
        return (reports / name).read_text()

    out = render_blocks(reports, missing)
    if have("speed.md"):
        out["speed"] = read("speed.md").split("\n", 1)[1].strip()
    if have("benchmarks.md"):
        bench = read("benchmarks.md")
        head = bench.split("\n\n")[1] if "\n\n" in bench else ""
        section = [t for t in re.findall(r"^## (In-workbench baselines beside Avalanche's.*)$", bench, flags=re.M)]
        if section:
            out["benchmarks"] = head + "\n\n" + _section(bench, section[0])
    if have("sweep_scaling.json"):
        sc = json.loads(read("sweep_scaling.json"))
        w = sc["wall_s"]
        times = ", ".join(f"{k} worker{'s' if k != '1' else ''} {v:.1f} s" for k, v in w.items())
        best = max(sc["speedup"], key=lambda k: sc["speedup"][k])
        out["sweep-scaling"] = (
            f"Measured speed-up of 1 vs 2 local Ray workers: {sc['runs']} runs (preset {sc['preset']}, "
            f"{', '.join(sc['set'])}): {times}; {sc['speedup'][best]:.2f}x with {best} workers (Ray's start-up, "
            f"{min(sc['ray_startup_s'].values()):.0f}-{max(sc['ray_startup_s'].values()):.0f} s, not counted). "
            f"Machine: {sc['machine']['cpu']}"
            f"{' (CPU family ' + str(sc['machine']['cpu_family']) + ')' if 'cpu_family' in sc['machine'] else ''}, "
            f"{sc['machine']['cores']} cores (machines here differ up to {spread():.1f}x in speed). Regenerate: "
            f"`python benchmarks/sweep_scaling.py --seeds 4 {' '.join('--set ' + x for x in sc['set'])}`, then "
            "`make readme`.")
    return out


PACKAGE = Path(__file__).resolve().parents[1]
# the package's folders bottom to top, in the order of the data path: a folder imports only the folders before it
# (tests/test_layout.py reads the imports against this order; the layout block lists the folders in it)
LAYERS = ("core", "data", "model", "evaluation", "methods", "engine", "reports", "experiments", "workbench", "cli")


SWEEP_EXAMPLE = "params/sweep_example.yaml"


def code_blocks() -> dict[str, str]:
    """The blocks that come from the code and the shipped files: the folder tree, the fingerprinted modules, the
    example sweep file as shipped, and the configuration fields `--set` accepts."""
    import ast

    from dynnn_lib.core.fingerprint import TRAINING_ENTRY, extension_modules, shared_modules
    from dynnn_lib.reports.glossary import glossary_block

    rows = []
    folders = {init.parent.name: init for init in PACKAGE.glob("*/__init__.py")}
    unknown = sorted(set(folders) - set(LAYERS))
    if unknown:
        raise DynnnError(f"dynnn_lib/{unknown[0]}/ is not in reports.readme.LAYERS; place it in the import order")
    for init in (folders[name] for name in LAYERS if name in folders):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        rows.append(f"dynnn_lib/{init.parent.name + '/':<13} {doc.splitlines()[0].rstrip('.') if doc else ''}")
    rows.append(f"dynnn_lib/{'cli.py':<13} the one command-line entry point: dynnn <command>")
    layout = "```\n" + "\n".join(rows) + "\n```"
    modules = ", ".join(f"`{m}`" for m in shared_modules())
    own = ", ".join(f"`{m}`" for m in sorted(extension_modules()))
    sweep = (PACKAGE.parent / SWEEP_EXAMPLE).read_text().rstrip("\n")
    return {"layout": layout,
            "fingerprinted": f"Derived from the imports of `{TRAINING_ENTRY}` (the loop; it scores nothing), "
                             f"followed module by module: {modules} (under `dynnn_lib/`). The built-in methods' and "
                             f"data sources' own modules enter the keys of the runs that use them only: {own}.",
            "sweep-example": f"```yaml\n# {SWEEP_EXAMPLE}\n{sweep}\n```",
            "config-fields": config_fields_block(), "glossary": glossary_block(),
            # the same generated sentence on the two pages that show timings (a block lives in one file)
            "cpu-references": references_block(), "cpu-references-sweeps": references_block()}


def fill_files(paths: list[Path], values: dict[str, str]) -> list[Path]:
    """Fill each block in the one file of `paths` that holds it; returns the files changed."""
    texts = {p: p.read_text() for p in paths}
    changed = []
    for name, body in values.items():
        holders = [p for p, t in texts.items() if f"<!-- BEGIN {name} -->" in t]
        if len(holders) != 1:
            where = ", ".join(map(str, holders)) or "none of " + ", ".join(map(str, paths))
            raise DynnnError(f"block '<!-- BEGIN {name} -->' must be in exactly one file; found in {where}")
        texts[holders[0]] = fill(texts[holders[0]], {name: body})
    for p, t in texts.items():
        if t != p.read_text():
            atomic_text(p, t)
            changed.append(p)
    return changed


def fill(text: str, values: dict[str, str]) -> str:
    for name, body in values.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", flags=re.S)
        if not pattern.search(text):
            raise DynnnError(f"README has no block '<!-- BEGIN {name} -->' ... '<!-- END {name} -->'")
        text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    return text


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--readme", default="README.md")
    ap.add_argument("--docs", default="docs", help="folder of the other documents (default docs)")
    ap.add_argument("--reports", default="reports")
    ap.add_argument("--code-only", action="store_true", help="only the blocks that come from the code (no reports)")


def command(args: argparse.Namespace) -> int:
    """dynnn readme: refill the generated blocks of the README and docs/ from reports/ and the code; a block whose
    report is missing is left as it was, and named."""
    paths = [Path(args.readme), *sorted(Path(args.docs).glob("*.md"))]
    missing: list[str] = []
    values = code_blocks() if args.code_only else {**blocks(Path(args.reports), missing), **code_blocks()}
    changed = fill_files(paths, values)
    print(f"updated {', '.join(map(str, changed)) or 'nothing (already current)'} from "
          f"{'the code' if args.code_only else args.reports + '/ and the code'}"
          + (f"; left as they were (no report): {', '.join(missing)}" if missing and not args.code_only else ""))
    return 0


def _field_notes(cls: type) -> dict[str, str]:
    """Each field's description, from the class's own source: its trailing comment (continued on the lines below
    it), else its entry in the class docstring (``name: ...``), first sentence."""
    import inspect

    notes: dict[str, str] = {}
    documented: dict[str, str] = {}
    doc = inspect.getdoc(cls) or ""
    for m in re.finditer(r"^(\w+): (.*?)(?=^\w+: |\Z)", doc, flags=re.S | re.M):
        text = " ".join(m.group(2).split()).split(" * ")[0]
        documented[m.group(1)] = re.split(r"(?<=\.)\s+(?=[A-Z])", text)[0].rstrip(".:")
    current = None
    for line in inspect.getsource(cls).splitlines():
        m = re.match(r"^    (\w+): [^=#]+=[^#]*?(?:#\s*(.*))?$", line)
        if m:
            current = m.group(1)
            if m.group(2):
                notes[current] = m.group(2).strip()
            continue
        m = re.match(r"^\s{8,}#\s*(.*)$", line)
        if m and current in notes:
            notes[current] += " " + m.group(1).strip()
        else:
            current = None
    return {**notes, **documented}


def config_fields_block() -> str:
    """Every field of RunConfig and DataConfig (``data.<name>``) that ``--set`` accepts, with its type, its default
    and its description, read from core/config.py."""
    import dataclasses

    from dynnn_lib.core.config import DataConfig, RunConfig
    from dynnn_lib.reports.tables import markdown_table

    def shown(v) -> str:
        v = list(v) if isinstance(v, tuple) else v
        return "`" + json.dumps(v) + "`" if not isinstance(v, str) else f"`{v}`"

    rows = [["field", "type", "default", "what it is"]]
    for cls, prefix in ((RunConfig, ""), (DataConfig, "data.")):
        notes = _field_notes(cls)
        defaults = cls() if cls is DataConfig else RunConfig()
        for f in dataclasses.fields(cls):
            if f.name == "data":
                continue
            value = getattr(defaults, f.name)
            default = "(see `dynnn methods`)" if f.name == "method_params" else shown(value)
            rows.append([f"`{prefix}{f.name}`", f"`{f.type}`", default, notes.get(f.name, "")])
    return (f"Generated from `RunConfig` and `DataConfig` (`dynnn_lib/core/config.py`) by `dynnn readme`; "
            f"{len(rows) - 1} fields.\n\n" + markdown_table(rows))


def spread() -> float:
    """How many times slower the slowest reference machine trains a task than the fastest (core/machines.py)."""
    return max(v[0] for v in REFERENCES.values()) / min(v[0] for v in REFERENCES.values())


def references_block() -> str:
    """The generated sentence on how far the machines here differ, from :data:`REFERENCES` (never typed twice)."""
    each = "; ".join(f"{s:.2f} s on an {name} of CPU family {k.split('/')[0]}, model {k.split('/')[1]} ({how})"
                     for k, (s, name, how) in sorted(REFERENCES.items(), key=lambda kv: -kv[1][0]))
    return (f"Every timing names the machine it came from: CPU model and family "
            f"(`dynnn_lib.core.fingerprint.machine_line`). The machines here differ by up to {spread():.1f}x: a task "
            f"training in `make all` (2 jobs) took {each} (`core/machines.py` `REFERENCES`, generated by `dynnn "
            f"readme`); compare timings only under one machine line.")
