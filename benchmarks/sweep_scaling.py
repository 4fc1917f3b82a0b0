"""Speed-up of a sweep on 1 vs 2 local Ray workers (the README's "Sweeps" section).

    python benchmarks/sweep_scaling.py [--seeds 4] [--preset tiny] [--set inc_epochs=3 ...] [--workers 1 2]

The same sweep (kd and combined expand@1, ``--seeds`` seeds: 2 x seeds runs) runs once per worker count on a new
local Ray instance with that many CPUs (one torch thread per run), each time in a fresh runs folder, so nothing
is cached. The sweep's wall time is measured on the running instance (Ray's own start-up is reported apart;
the workers' start-up is counted). Prints the machine (CPU model, cores), the wall time of each and the ratio, and writes them to
``reports/sweep_scaling.json``. Measure on a quiet machine: other load on the cores distorts the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from dynnn_lib.core.config import apply_assignments
    from dynnn_lib.experiments.sweep import parse_spec, run_sweep

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--preset", default="tiny", help="starting configuration ('' for the full defaults)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a base field")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default=str(ROOT / "reports" / "sweep_scaling.json"))
    args = ap.parse_args(argv)
    base = apply_assignments({}, args.set)
    spec = parse_spec({"name": "scaling", **({"preset": args.preset} if args.preset else {}), "base": base,
                       "list": [{"method": "kd"}, {"method": "combined", "expand_at": [1]}],
                       "grid": {"seed": {"range": args.seeds}}}, "benchmark")
    import ray

    times, startup = {}, {}
    for w in args.workers:
        with tempfile.TemporaryDirectory(prefix="dynnn-scaling-") as tmp:
            t = time.perf_counter()
            ray.init(num_cpus=w, include_dashboard=False, log_to_driver=False, configure_logging=False)
            startup[w] = time.perf_counter() - t
            try:
                t = time.perf_counter()  # the sweep on the running instance (worker start-up included)
                report = run_sweep(spec, executor="ray", jobs=w, threads=1, runs_dir=Path(tmp) / "runs",
                                   out=Path(tmp) / "reports", progress=False, echo=lambda s: None)
                times[w] = time.perf_counter() - t
            finally:
                ray.shutdown()
            if report.failed:
                print(f"{len(report.failed)} runs failed: {report.failed[0]['error']}", file=sys.stderr)
                return 1
        print(f"{w} worker(s): sweep {times[w]:.1f} s for {len(report.runs)} runs (Ray start-up {startup[w]:.1f} s, "
              "not counted)")
    from dynnn_lib.core.fingerprint import cpu

    machine = {"cpu": cpu()["model"], "cpu_family": cpu()["family"], "cores": os.cpu_count(), "python": platform.python_version()}
    result = {"machine": machine, "runs": 2 * args.seeds, "preset": args.preset, "set": args.set,
              "wall_s": {str(w): t for w, t in times.items()}, "ray_startup_s": {str(w): t for w, t in startup.items()}}
    if 1 in times and len(times) > 1:
        most = max(times)
        result["speedup"] = {str(w): times[1] / t for w, t in times.items()}
        print(f"speed-up {most} vs 1 worker(s): {times[1] / times[most]:.2f}x")
    print(f"machine: {machine['cpu']}, {machine['cores']} cores")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
