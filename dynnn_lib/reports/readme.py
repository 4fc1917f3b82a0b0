"""Regenerate the README's measured blocks from the reports, so no number in it is typed by hand.

    python -m dynnn_lib.reports.readme [--readme README.md] [--reports reports]      (make readme, after make all / make speed)

A block is the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->``; each is filled from one report:

* ``fidelity``     - reports/fidelity_claims.md with the machine line of reports/fidelity.md;
* ``reproduction`` - the router and oracle tables of reports/reproduction.md;
* ``speed``        - reports/speed.md (throughput, profile, per-run times, make all's phases);
* ``baselines``    - reports/baselines.md (``make baselines``: DynamicNN beside LwF, EWC, replay, joint);
* ``benchmarks``   - the in-workbench-vs-Avalanche table of reports/benchmarks.md (``make bench``);
* ``sweep-scaling`` - reports/sweep_scaling.json (``python benchmarks/sweep_scaling.py``: 1 vs 2 Ray workers).

The last two are optional: without their report the block is left as it is.
"""
from __future__ import annotations

import argparse
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


def blocks(reports: Path) -> dict[str, str]:
    def read(name: str) -> str:
        p = reports / name
        if not p.exists():
            raise DynnnError(f"{p} does not exist; run make all (and make speed) first")
        return p.read_text()

    fidelity = read("fidelity.md")
    machine = next((l for l in fidelity.splitlines() if l.startswith("Machine:")), "")
    reproduction = read("reproduction.md")
    speed = read("speed.md").split("\n", 1)[1].strip()
    out = {}
    if (reports / "baselines.md").exists():
        out["baselines"] = read("baselines.md").split("\n", 1)[1].strip()
    if (reports / "benchmarks.md").exists():
        bench = read("benchmarks.md")
        head = bench.split("\n\n")[1] if "\n\n" in bench else ""
        section = [t for t in re.findall(r"^## (In-workbench baselines beside Avalanche's.*)$", bench, flags=re.M)]
        if section:
            out["benchmarks"] = head + "\n\n" + _section(bench, section[0])
    if (reports / "sweep_scaling.json").exists():
        import json

        sc = json.loads(read("sweep_scaling.json"))
        w = sc["wall_s"]
        times = ", ".join(f"{k} worker{'s' if k != '1' else ''} {v:.1f} s" for k, v in w.items())
        best = max(sc["speedup"], key=lambda k: sc["speedup"][k])
        out["sweep-scaling"] = (
            f"Measured speed-up of 1 vs 2 local Ray workers: {sc['runs']} runs (preset {sc['preset']}, "
            f"{', '.join(sc['set'])}): {times}; {sc['speedup'][best]:.2f}x with {best} workers (Ray's start-up, "
            f"{min(sc['ray_startup_s'].values()):.0f}-{max(sc['ray_startup_s'].values()):.0f} s, not counted). "
            f"Machine: {sc['machine']['cpu']}, {sc['machine']['cores']} cores. Regenerate: "
            f"`python benchmarks/sweep_scaling.py --seeds 4 {' '.join('--set ' + x for x in sc['set'])}`, then "
            "`make readme`.")
    return {**out, "fidelity": f"{machine}\n\n{read('fidelity_claims.md').strip()}",
            "reproduction": "\n\n".join(f"**Head rule: {rule}**\n\n{_section(reproduction, f'Head rule: {rule}')}"
                                        for rule in ("router", "oracle", "mean_prob")),
            "speed": speed}


def fill(text: str, values: dict[str, str]) -> str:
    for name, body in values.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", flags=re.S)
        if not pattern.search(text):
            raise DynnnError(f"README has no block '<!-- BEGIN {name} -->' ... '<!-- END {name} -->'")
        text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    return text


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--readme", default="README.md")
    ap.add_argument("--reports", default="reports")


def command(args: argparse.Namespace) -> int:
    """dynnn readme: refill the generated blocks of the README (and docs/) from reports/."""
    path = Path(args.readme)
    atomic_text(path, fill(path.read_text(), blocks(Path(args.reports))))
    print(f"updated {args.readme} from {args.reports}/")
    return 0
