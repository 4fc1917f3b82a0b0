"""Prefix sharing measured side by side in one run (make sharing): task trainings, wall time and disk with shared
prefixes (DYNNN_SHARE=all, the runs trained as a tree) and without (DYNNN_SHARE=task0: independent runs sharing
task 0, as before prefixes), for make all's runs and for the schedule landscape; then the explorer's click latency
in the browser test (warm task 0, a scripted sequence of changes at task 5 or later).

    python benchmarks/sharing.py                      # writes reports/sharing.md|json
    python benchmarks/sharing.py --tiny --no-latency  # seconds; what the test suite runs

Counts for the full workloads (make all: 5 seeds x 2 instances x 2 stand-ins and the notebooks; the 9-task
landscape: 256 schedules x 3 seeds) come from the plan (engine/executors.TreePlan: exact, nothing trained). Wall
times come from smaller workloads trained both ways here, each in a fresh runs folder with the data and
pretraining caches warm: make all's fidelity runs for `--seeds` seeds on one instance, and the landscape with
`--max-heads` heads for `--seeds` seeds. "overhead" is wall x jobs / the seconds the task trainings took inside
the runs (1.00: nothing lost to waves, process start-up or reloading prefixes).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from dynnn_lib.core.fingerprint import machine_line, threads  # noqa: E402
from dynnn_lib.engine.cache import prefix_disk  # noqa: E402
from dynnn_lib.engine.executors import TreePlan, execute, train_tree  # noqa: E402
from dynnn_lib.core import make_all  # noqa: E402
from dynnn_lib.experiments import schedules as sch  # noqa: E402
from dynnn_lib.experiments.catalogue import paper_configs  # noqa: E402
from dynnn_lib.experiments.contract import unique  # noqa: E402
from dynnn_lib.workbench.plan import notebook_configs  # noqa: E402

TINY = {"base_epochs": 1, "inc_epochs": 1, "base_milestones": [1], "inc_milestones": [1], "pretrained": False,
        "data": {"n_tasks": 5, "n_classes": 4, "train_per_class": 8, "test_per_class": 4}}
STANDINS = tuple(make_all.read()["standins"])  # make all's (params/make_all.yaml)
CLICKS = [[1, 5], [1, 5, 7], [1, 7], [1, 6, 7], [1, 6, 7, 8]]  # each trains from task 5 or later


def make_all_configs(seeds: int, instances, streams, base=None):
    params = yaml.safe_load((ROOT / "params" / "default.yaml").read_text()) or {}
    return unique(paper_configs(seeds, instances, base, streams=streams) + notebook_configs(params))


def landscape_configs(base, seeds: int, max_heads):
    return sch.plan(base, range(seeds), max_heads).configs()


def counts(configs) -> dict:
    with tempfile.TemporaryDirectory() as empty:
        plan = TreePlan.make(configs, Path(empty))
    return {"runs": len(plan.distinct), "tree": plan.tree_tasks, "independent": plan.independent_tasks,
            "ratio": plan.independent_tasks / plan.tree_tasks}


def both_ways(configs, jobs: int, work: Path) -> dict:
    """Train `configs` without sharing (independent runs, task 0 shared) and as a tree, each in a fresh folder."""
    out = {}
    for mode in ("task0", "all"):
        runs = work / mode
        shutil.rmtree(runs, ignore_errors=True)
        os.environ["DYNNN_SHARE"] = mode
        start = time.perf_counter()
        if mode == "all":
            stats = train_tree(configs, runs, jobs=jobs, progress=False)
            trained, trained_s, failed = stats.trained_tasks, stats.trained_s, stats.failed
        else:
            outcomes = execute(configs, runs, "local", jobs, None, threads(), progress=False)
            trained = sum(o.trained for o in outcomes.values())
            trained_s = sum(o.trained_s for o in outcomes.values())
            failed = [o.error for o in outcomes.values() if o.status == "failed"]
        wall = time.perf_counter() - start
        if failed:
            raise SystemExit(f"{mode}: {len(failed)} run(s) failed; the first: {failed[0]}")
        out[mode] = {"trained_tasks": trained, "wall_s": wall, "trained_s": trained_s,
                     "overhead": wall * jobs / trained_s if trained_s else float("nan"),
                     "prefix_mb": prefix_disk(runs)["bytes"] / 1e6}
    os.environ.pop("DYNNN_SHARE", None)
    out["speedup"] = out["task0"]["wall_s"] / out["all"]["wall_s"]
    return out


def latency(cache: str, tiny: bool) -> dict:
    """The browser test with the nine-task setting and the scripted clicks; its latencies (JSON)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "latency.json"
        setting = ({"n_tasks": 5, "base": TINY, "clicks": [[1, 3], [1, 3, 4]]} if tiny
                   else {"n_tasks": 9, "base": {}, "clicks": CLICKS, "timeout_s": 1800})
        env = {**os.environ, "DYNNN_EXPLORER": json.dumps({**setting, "cache": cache}),
               "DYNNN_LATENCY_OUT": str(out)}
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(ROOT / "tests" / "test_browser.py")], cwd=ROOT, env=env, capture_output=True,
                              text=True)
        if not out.exists():
            return {"skipped": (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]}
        return json.loads(out.read_text())


def report(res: dict) -> str:
    def row(name, d):
        a, b = d["task0"], d["all"]
        return (f"| {name} | {a['trained_tasks']} / {b['trained_tasks']} | {a['wall_s'] / 60:.1f} / {b['wall_s'] / 60:.1f} "
                f"min ({d['speedup']:.2f}x) | {a['overhead']:.2f} / {b['overhead']:.2f} | {b['prefix_mb']:.1f} MB |")

    lines = [f"# Prefix sharing, side by side ({res['machine']})", "",
             "## Task trainings of the full workloads (exact, from the plan)", "",
             "| workload | runs | independent runs (task 0 shared) | as a tree | fewer |", "|---|---|---|---|---|"]
    for name, c in res["counts"].items():
        lines.append(f"| {name} | {c['runs']} | {c['independent']} | {c['tree']} | {c['ratio']:.2f}x |")
    lines += ["", f"## Trained both ways here ({res['jobs']} jobs; without / with sharing)", "",
              "| workload | task trainings | wall | overhead (wall x jobs / training s) | prefixes on disk |",
              "|---|---|---|---|---|"]
    for name, d in res["measured"].items():
        lines.append(row(name, d))
    lat = res.get("latency")
    if lat and "median_s" in lat:
        lines += ["", "## The explorer: a click with task 0 warm (browser test)", "",
                  f"{lat['n_tasks']} tasks; clicks {lat['clicks']}: latency {', '.join(f'{x:.1f}' for x in lat['latency_s'])} s; "
                  f"median {lat['median_s']:.1f} s, worst {lat['worst_s']:.1f} s."]
    elif lat:
        lines += ["", f"The explorer's latency was not measured: {lat['skipped']}"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1, help="seeds of the measured workloads (default 1)")
    ap.add_argument("--max-heads", type=int, default=2, help="the measured landscape's limit (default 2: 9 schedules)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="tiny runs (seconds): checks the script, measures nothing")
    ap.add_argument("--no-latency", action="store_true", help="skip the browser test")
    ap.add_argument("--out", default=str(ROOT / "reports"))
    args = ap.parse_args(argv)
    base = TINY if args.tiny else {}
    res = {"machine": machine_line(), "jobs": args.jobs, "counts": {
        "make all (5 seeds, 2 instances, 2 stand-ins, notebooks)": counts(make_all_configs(5, [0, 1], STANDINS)),
        "landscape, 9 tasks, 256 schedules, 3 seeds": counts(landscape_configs({}, 3, None)),
        "landscape, 9 tasks, at most 3 heads, 3 seeds": counts(landscape_configs({}, 3, 3))}}
    cache = os.environ.get("DYNNN_CACHE") or str(Path.home() / ".cache" / "dynnn")
    with tempfile.TemporaryDirectory(prefix="dynnn-sharing-") as work:
        fidelity = unique(paper_configs(args.seeds, [0], base or None, streams=[None]))
        res["measured"] = {
            f"make all's fidelity runs ({args.seeds} seed, 1 instance)": both_ways(fidelity, args.jobs, Path(work) / "a"),
            f"landscape, at most {args.max_heads} heads ({args.seeds} seed)":
                both_ways(landscape_configs(base, args.seeds, args.max_heads), args.jobs, Path(work) / "b")}
    if not args.no_latency:
        res["latency"] = latency(cache, args.tiny)
    text = report(res)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "sharing-tiny" if args.tiny else "sharing"
    (out / f"{name}.md").write_text(text)
    (out / f"{name}.json").write_text(json.dumps(res, indent=1, default=float))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
