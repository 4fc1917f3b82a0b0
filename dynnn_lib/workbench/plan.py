"""Plan every run ``make all`` needs, then train the union once.

    python -m dynnn_lib.workbench.plan params/default.yaml [--seeds 1] [--instances 1 ... 8] [--repro-seeds 3]
                                      [--jobs N] [--dry-run]

The reproduction (``--repro-seeds`` seeds), the fidelity report (five paper variants, V2' and the automatic rule,
``--seeds`` seeds on each evaluation instance) and the notebooks (their studies with the parameters of ``params/default.yaml``) are collected
first; configurations that train the same run (equal keys) are trained once, ``--jobs`` at a time, as a tree of
shared prefixes (engine/executors.train_tree: the state after a task that several runs share is trained once),
so that the later phases only read the run cache.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from dynnn_lib.core import options
from dynnn_lib.core.config import RunConfig, from_dict
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.core.streams import EVALUATION_INSTANCES
from dynnn_lib.experiments.studies import NOTEBOOK_STUDIES



def paper_configs(seeds: int, instances: Sequence[int] = (0,), base: Mapping[str, Any] | None = None,
                  streams: Sequence[str | None] = (None,)) -> list[RunConfig]:
    """The fidelity report's runs (the five headline variants, V2', the automatic rule) for seeds 0..seeds-1 on every
    benchmark instance (data.data_seed) of every stand-in in `streams` (after the first: the side-by-side's
    instances, fidelity.instances_of)."""
    from dynnn_lib.experiments.fidelity import instances_of, plan as fidelity_plan

    return [c for i, st in enumerate(streams)
            for cfgs in fidelity_plan(base, seeds, instances_of(i, instances), stream=st).values() for c in cfgs]


def reproduction_configs(seeds: int, base: Mapping[str, Any] | None = None) -> list[RunConfig]:
    """The reproduction's runs (dynnn reproduce): the paper's five variants, seeds 0..seeds-1, on its instance."""
    from dynnn_lib.experiments.reproduce import on_its_instance, variant_configs

    return [c for cfgs in variant_configs(on_its_instance(base), range(seeds)).values() for c in cfgs]


def notebook_configs(params: Mapping[str, Mapping[str, Any]]) -> list[RunConfig]:
    """The runs the notebooks' studies make with these batch parameters (see params/default.yaml): each planned
    notebook's (experiments/studies.py NOTEBOOK_STUDIES) from the parameters the batch gives it over its own
    defaults, after importing the files beside it that its runs use (07: its method, novelty.py)."""
    from dynnn_lib.core.registry import import_modules
    from dynnn_lib.experiments.studies import NOTEBOOK_PLUGINS
    from dynnn_lib.workbench.batch import plan as notebook_plan
    from dynnn_lib.workbench.notebook import load_notebook, parameters_of

    out = []
    for path, p in notebook_plan(params).items():
        if path.stem not in NOTEBOOK_STUDIES:
            continue
        import_modules([str(path.parent / f) for f in NOTEBOOK_PLUGINS.get(path.stem, ())])
        out += NOTEBOOK_STUDIES[path.stem]({**parameters_of(load_notebook(path)), **p})
    return out


def unique(configs: Sequence[RunConfig]) -> list[RunConfig]:
    seen, out = set(), []
    for c in configs:
        if c.key() not in seen:
            seen.add(c.key())
            out.append(c)
    return out


# Seconds per task training of the default configuration, one torch thread, measured side by side with another
# job, by CPU family (/proc/cpuinfo): AMD EPYC family 25 (Zen 3) 10.6 s (make all from a fresh clone, 1,228 task
# trainings); family 26 (Zen 5): that figure divided by the 4x measured between the two. Another CPU is estimated
# with family 25's figure, and says so.
REFERENCE_TASK_S = {"25": 10.6, "26": 10.6 / 4}


def reference_seconds() -> tuple[float, str]:
    """(seconds per task training, where the figure comes from) for this machine, before anything is cached."""
    from dynnn_lib.core.fingerprint import cpu

    family = str(cpu()["family"])
    if family in REFERENCE_TASK_S:
        return REFERENCE_TASK_S[family], (f"{REFERENCE_TASK_S[family]:.1f} s per task training (CPU family {family}'s "
                                          "reference)")
    return REFERENCE_TASK_S["25"], (f"{REFERENCE_TASK_S['25']} s per task training (no reference for CPU family "
                                    f"{family}: family 25's, a slow machine)")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("params", help="notebook parameters (YAML), e.g. params/default.yaml")
    ap.add_argument("--seeds", type=int, default=1, help="seeds per instance of the fidelity report (default 1)")
    ap.add_argument("--instances", type=int, nargs="+", default=list(EVALUATION_INSTANCES),
                    help="evaluation instances (data.data_seed) of the fidelity report (default core/streams.py's)")
    ap.add_argument("--repro-seeds", type=int, default=3, help="seeds of the reproduction (default 3)")
    ap.add_argument("--streams", nargs="+", default=[None], metavar="STREAM",
                    help="the stand-ins of the fidelity report (default: the default stream; make all: both, see "
                         "fidelity --streams)")
    options.jobs(ap, "parallel runs")
    options.runs_dir(ap)
    ap.add_argument("--dry-run", action="store_true", help="count the runs and the cached ones; train nothing")


def command(args: argparse.Namespace) -> int:
    """dynnn plan: every run the reports and notebooks need, planned first and trained once."""
    import time

    import yaml

    from dynnn_lib.engine.cache import cached_result, default_runs_dir
    from dynnn_lib.engine.executors import TreePlan, train_tree

    if args.seeds < 1 or args.jobs < 1 or args.repro_seeds < 1:
        raise ConfigError("--seeds, --repro-seeds and --jobs must be at least 1")
    p = Path(args.params)
    if not p.is_file():
        raise ConfigError(f"parameter file {p} does not exist")
    params = yaml.safe_load(p.read_text()) or {}
    configs = unique(paper_configs(args.seeds, args.instances, streams=args.streams)
                     + reproduction_configs(args.repro_seeds) + notebook_configs(params))
    runs_dir = Path(args.runs_dir or default_runs_dir())
    cached = [r for r in (cached_result(c, runs_dir) for c in configs) if r is not None]
    tree = TreePlan.make(configs, runs_dir)
    per_task, source = reference_seconds()
    if cached:  # corrected by what this machine measured
        per_task = sum(r.timings.get("total_s", 0.0) for r in cached) / max(sum(len(r.logs) for r in cached), 1)
        source = f"{per_task:.1f} s per task training measured on the {len(cached)} cached runs"
    estimate = f"~{tree.tree_tasks * per_task / args.jobs / 60:.0f} min; {source}"
    print(f"{len(configs)} runs planned, {len(cached)} cached, {len(tree.pending)} to train: {tree.tree_tasks} task "
          f"trainings with shared prefixes, {tree.independent_tasks} as independent runs sharing task 0 "
          f"({estimate} at {args.jobs} jobs)")
    if args.dry_run:
        return 0
    stats = train_tree(configs, runs_dir, jobs=args.jobs, progress=True)
    print(f"trained {len(tree.pending)} runs ({stats.trained_tasks} task trainings) in {stats.wall_s:.0f} s")
    if stats.failed:
        raise ConfigError(f"{len(stats.failed)} run(s) failed; the first: {stats.failed[0]}")
    return 0
