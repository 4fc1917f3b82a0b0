"""Regenerate the README's measured blocks from the reports, so no number in it is typed by hand.

    python -m dynnn_lib.readme [--readme README.md] [--reports reports]      (make readme, after make all / make speed)

A block is the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->``; each is filled from one report:

* ``fidelity``     - reports/fidelity_claims.md with the machine line of reports/fidelity.md;
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
import re
import sys
from pathlib import Path

from .errors import DynnnError
from .store import atomic_text


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

    out = {}
    if have("fidelity.md", "fidelity_claims.md"):
        machine = next((l for l in read("fidelity.md").splitlines() if l.startswith("Machine:")), "")
        out["fidelity"] = f"{machine}\n\n{read('fidelity_claims.md').strip()}"
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
        import json

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


def fill(text: str, values: dict[str, str]) -> str:
    for name, body in values.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", flags=re.S)
        if not pattern.search(text):
            raise DynnnError(f"README has no block '<!-- BEGIN {name} -->' ... '<!-- END {name} -->'")
        text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dynnn_lib.readme", description=__doc__.splitlines()[0])
    ap.add_argument("--readme", default="README.md")
    ap.add_argument("--reports", default="reports")
    args = ap.parse_args(argv)
    try:
        path = Path(args.readme)
        missing: list[str] = []
        values = blocks(Path(args.reports), missing)
        if not values:
            raise DynnnError(f"no report in {args.reports}/ to fill the README from; run make all (or make bench, "
                             "make speed, make baselines) first")
        atomic_text(path, fill(path.read_text(), values))
    except DynnnError as e:
        print(f"dynnn: error: {e}", file=sys.stderr)
        return 2
    print(f"updated {args.readme} from {args.reports}/: {', '.join(values)}"
          + (f"; left as they were (no report): {', '.join(missing)}" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
