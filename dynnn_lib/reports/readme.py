"""Regenerate the generated blocks of the README and docs/ from the reports and the code, so no number or list
in them is typed by hand.

    dynnn readme [--readme README.md] [--docs docs] [--reports reports]   (make readme, after make all / make speed)

A block is the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->``, in whichever of README.md and
docs/*.md holds it (each block lives in one file). Two come from the code itself (:func:`code_blocks`):

* ``layout``       - the package's folders, a line each, from each folder's ``__init__`` docstring;
* ``fingerprinted`` - the modules whose code is in every run's cache key (``core.fingerprint.shared_modules``, derived).

The others are each filled from one report:

* ``fidelity``     - reports/fidelity_claims.md with the machine line of reports/fidelity.md;
* ``standins``     - reports/standins.md: every claim's verdict on the calibrated stand-in and the one before it;
* ``calibration``  - reports/calibration.json: RMSE before and after the calibration, the held-out prediction, the
  five variants' square scores beside the paper's;
* ``reproduction`` - the router and oracle tables of reports/reproduction.md;
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

from dynnn_lib.core.errors import DynnnError
from dynnn_lib.core.store import atomic_text


def _section(md: str, title: str) -> str:
    """The body of the '## title' section of a Markdown report."""
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", md, flags=re.S | re.M)
    if not m:
        raise DynnnError(f"the report has no section '## {title}'; regenerate it with make all")
    return m.group(1).strip()


def blocks(reports: Path, missing: list[str] | None = None) -> dict[str, str]:
    """Block name -> its text, for every block whose report exists; the names of the others go to `missing`
    (their blocks are left as they are: e.g. after `make bench` alone only the benchmarks block changes)."""
    missing = [] if missing is None else missing

    def have(*names: str) -> bool:
        absent = [n for n in names if not (reports / n).exists()]
        missing.extend(absent)
        return not absent

    def read(name: str) -> str:
        return (reports / name).read_text()

    def written(name: str) -> str:
        """When the report was written (its file's modification time, UTC)."""
        import datetime as dt

        t = dt.datetime.fromtimestamp((reports / name).stat().st_mtime, tz=dt.timezone.utc)
        return f"`reports/{name}`, written {t:%Y-%m-%d %H:%M} UTC"

    out = {}
    if have("fidelity.md", "fidelity_claims.md"):
        machine = next((l for l in read("fidelity.md").splitlines() if l.startswith("Machine:")), "")
        fid = json.loads(read("fidelity.json")) if (reports / "fidelity.json").exists() else {}
        what = (f"Stand-in `{fid['stream']}`, generated evaluation instances {fid['instances']} (the unit of every "
                f"claim), seeds {fid['seeds']} on each; {fid['decided']} of {len(fid['claims'])} claims decided "
                f"(margin {fid['margin'] * 100:g} point). Source: {written('fidelity.json')}.\n\n"
                if "decided" in fid else "")
        out["fidelity"] = f"{machine}\n\n{what}{read('fidelity_claims.md').strip()}"
    if have("standins.json"):
        fid = json.loads(read("fidelity.json")) if (reports / "fidelity.json").exists() else {}
        runs = (f"seeds {fid['seeds']}, {_machine(fid['machine'])}" if "seeds" in fid and "machine" in fid
                else "seeds and machine in `reports/fidelity.md`")
        out["standins"] = (standins_block(json.loads(read("standins.json")))
                           + f"\nSource: {written('standins.json')} by `make all` (`dynnn fidelity`); {runs}.\n")
    if have("calibration.json"):
        out["calibration"] = (calibration_block(json.loads(read("calibration.json")))
                              + f"\n\nSource: {written('calibration.json')} by `make all` (`dynnn calibrate --evaluate`).")
    if have("reproduction.md"):
        reproduction = read("reproduction.md")
        out["reproduction"] = "\n\n".join(f"**Head rule: {rule}**\n\n{_section(reproduction, f'Head rule: {rule}')}"
                                           for rule in ("router", "oracle", "mean_prob"))
    if have("speed.md"):
        out["speed"] = read("speed.md").split("\n", 1)[1].strip()
    if have("baselines.md"):
        out["baselines"] = read("baselines.md").split("\n", 1)[1].strip()
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
            f"{sc['machine']['cores']} cores (machines here differ up to 4x in speed). Regenerate: "
            f"`python benchmarks/sweep_scaling.py --seeds 4 {' '.join('--set ' + x for x in sc['set'])}`, then "
            "`make readme`.")
    return out


def _machine(m) -> str:
    """A report's machine (fidelity.json's dict, or a line already written)."""
    if isinstance(m, str):
        return m
    where = m.get("line") or f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores"
    return f"machine: {where}" + (f", runs generated {m['date']}" if m.get("date") else "")


def calibration_block(c: dict) -> str:
    """Before/after RMSE on what the fit read, the held-out prediction, and the variants, from calibration.json."""
    from dynnn_lib.reports.tables import markdown_table

    b, a = c["before"], c["after"]
    split = "fit" in a  # per instance: the fit's instances beside the evaluation instances' median (the headline)
    fit, ev = c.get("fit_instances"), c.get("evaluation_instances")
    rows = [["points (RMSE against the paper)", "before: `round1`", "after: `round1-calibrated`"]]
    if split:
        rows = [["points (RMSE against the paper)", f"before, fit instance(s) {fit}",
                 f"before, evaluation {ev} (median)", f"after, fit instance(s) {fit}",
                 f"**after, evaluation {ev} (median)**"]]
    for key, label in (("rmse_finetune_45", "finetune, 45 entries (fitted)"),
                       ("rmse_v2_diagonal_9", "V2' diagonal, 9 entries (fitted)"),
                       ("rmse_calibration", "the objective: all 54"),
                       ("held_out_rmse_v2_offdiagonal_36", "**held out**: V2' below the diagonal, 36 entries")):
        rows.append([label, f"{b['fit'][key]:.2f}", f"{b[key]:.2f}", f"{a['fit'][key]:.2f}", f"**{a[key]:.2f}**"]
                    if split else [label, f"{b[key]:.2f}", f"{a[key]:.2f}"])
    variants = [["square (%, a prediction)", "the paper", "before", "after"]] + [
        [name, f"{v['paper']:.2f}", f"{v['before'][0]:.2f} ± {v['before'][1]:.2f}",
         f"{v['after'][0]:.2f} ± {v['after'][1]:.2f}"] for name, v in c.get("variants", {}).items()]
    s = c.get("search") or {}
    where = (f"Measured on {c['evaluated']}" if "evaluated" in c else f"{c['seeds']} seed(s) per trial")
    head = (f"{where}. The fit ({s.get('trials', c['trials'])} trials, {s.get('wall_minutes', c.get('wall_minutes', 0)):.0f} "
            f"min at {s.get('jobs', c.get('jobs'))} jobs on {s.get('machine', c.get('machine'))}) read only the 54 "
            "calibration entries; everything else is a prediction.")
    return "\n\n".join([head, markdown_table(rows)] + ([markdown_table(variants)] if len(variants) > 1 else []))


def standins_block(c: dict) -> str:
    """The paper's own claims (those with a published number): their overall verdict on each stand-in and whether
    it depends on the stand-in, from standins.json; our extensions' claims are counted, and are in standins.md."""
    from dynnn_lib.reports.tables import markdown_table

    papers = [x for x in c["claims"] if x["paper"] != "not published"]
    rows = [["the paper's claim", "the paper", *[f"`{s}`" for s in c["streams"]], "depends on the stand-in"]]
    rows += [[x["claim"], x["paper"], *[x["overall"][s] for s in c["streams"]],
              "**yes**" if x["depends_on_standin"] else "no"] for x in papers]
    n = sum(x["depends_on_standin"] for x in c["claims"])
    ours = len(c["claims"]) - len(papers)
    return (f"Both stand-ins judged on the same {len(c['instances'])} instances {c['instances']} (the side-by-side: "
            f"paired over the instances, 95 % intervals; the default stand-in over all its evaluation instances is "
            f"in [the fidelity findings](docs/fidelity.md)). {n} of all {len(c['claims'])} claims depend on the "
            f"stand-in; the {ours} about our own extensions (router, automatic rule) and every interval are in "
            f"`reports/standins.md`.\n\n" + markdown_table(rows) + "\n")


PACKAGE = Path(__file__).resolve().parents[1]
# the package's folders bottom to top, in the order of the data path: a folder imports only the folders before it
# (tests/test_layout.py reads the imports against this order; the layout block lists the folders in it)
LAYERS = ("core", "data", "model", "evaluation", "methods", "engine", "reports", "experiments", "workbench", "cli")


SWEEP_EXAMPLE = "params/sweep_example.yaml"


def code_blocks() -> dict[str, str]:
    """The blocks that come from the code and the shipped files: the folder tree, the fingerprinted modules, the
    example sweep file as shipped, and the configuration fields `--set` accepts."""
    import ast

    from dynnn_lib.core.fingerprint import layers, method_modules, shared_modules

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
    own = ", ".join(f"`{m}`" for m in sorted(method_modules()))
    layer_list = ", ".join(f"`{f}/`" for f in layers())
    sweep = (PACKAGE.parent / SWEEP_EXAMPLE).read_text().rstrip("\n")
    return {"layout": layout,
            "fingerprinted": f"Derived from the imports of `engine/runner.py`: every module under {layer_list}: "
                             f"{modules} (under `dynnn_lib/`). The built-in methods' own modules enter the keys of "
                             f"their methods only: {own}.",
            "sweep-example": f"```yaml\n# {SWEEP_EXAMPLE}\n{sweep}\n```",
            "config-fields": config_fields_block()}


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
