"""Plan every run ``make all`` needs, then train the union once.

    dynnn plan params/default.yaml [--seeds 1] [--instances 1 ... 8] [--repro-seeds 2] [--streams A B]
                                   [--only EXPERIMENT ...] [--import MODULE] [--jobs N] [--dry-run]

Every registered experiment (experiments/contract.py: the reproduction, the fidelity report and the stand-ins side
by side, the calibration's re-measurement, the notebooks) declares the runs it needs under these settings; they are
collected first, configurations that train the same run (equal keys) are trained once, ``--jobs`` at a time, as a
tree of shared prefixes (engine/executors.train_tree: the state after a task that several runs share is trained
once), so that the later phases only read the run cache. Each experiment's share is printed before training.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping

from dynnn_lib.core import options
from dynnn_lib.core.config import RunConfig
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.core.machines import REFERENCES, reference_seconds  # noqa: F401 (reference_seconds: re-exported)
from dynnn_lib.core.registry import import_modules
from dynnn_lib.experiments.contract import Experiment, Settings, planned, register, unique
from dynnn_lib.experiments.studies import NOTEBOOK_STUDIES


def notebook_configs(params: Mapping[str, Mapping[str, Any]]) -> list[RunConfig]:
    """The runs the notebooks' studies make with these batch parameters (see params/default.yaml): each planned
    notebook's (experiments/studies.py NOTEBOOK_STUDIES) from the parameters the batch gives it over its own
    defaults, after importing the files beside it that its runs use (07: its method, novelty.py)."""
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


register(Experiment(name="notebooks", schema="dynnn.notebooks/1", runs=lambda s: notebook_configs(s.params),
                    summary="every notebook's studies with the batch parameters (make notebooks reads the cache)"))


REFERENCE_TASK_S = {k: v[0] for k, v in REFERENCES.items()}  # the per-task figures alone


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("params", help="notebook parameters (YAML), e.g. params/default.yaml")
    s = Settings()  # the defaults: make all's (params/make_all.yaml)
    ap.add_argument("--seeds", type=int, default=s.seeds,
                    help=f"seeds per instance of the fidelity report (default {s.seeds})")
    ap.add_argument("--instances", type=int, nargs="+", default=list(s.instances),
                    help="evaluation instances (data.data_seed) of the fidelity report (default "
                         f"{' '.join(map(str, s.instances))})")
    ap.add_argument("--repro-seeds", type=int, default=s.repro_seeds,
                    help=f"seeds of the reproduction (default {s.repro_seeds})")
    ap.add_argument("--streams", nargs="+", default=list(s.streams), metavar="STREAM",
                    help=f"the stand-ins of the fidelity report (default {' '.join(map(str, s.streams))}; see "
                         "fidelity --streams)")
    options.jobs(ap, "parallel runs")
    options.runs_dir(ap)
    ap.add_argument("--only", nargs="+", metavar="EXPERIMENT",
                    help="plan only these registered experiments (default: every one make all reads)")
    options.imports(ap)
    ap.add_argument("--dry-run", action="store_true", help="count the runs and the cached ones; train nothing")


def command(args: argparse.Namespace) -> int:
    """dynnn plan: every run the registered experiments need (experiments/contract.py), planned first and trained
    once."""
    import time

    import yaml

    from dynnn_lib.engine.cache import cached_result, default_runs_dir
    from dynnn_lib.engine.executors import TreePlan, train_tree

    if args.seeds < 1 or args.jobs < 1 or args.repro_seeds < 1:
        raise ConfigError("--seeds, --repro-seeds and --jobs must be at least 1")
    p = Path(args.params)
    if not p.is_file():
        raise ConfigError(f"parameter file {p} does not exist")
    import_modules(args.imports)
    settings = Settings(seeds=args.seeds, instances=tuple(args.instances), repro_seeds=args.repro_seeds,
                        streams=tuple(args.streams), params=yaml.safe_load(p.read_text()) or {})
    by_experiment = planned(settings, args.only)
    runs_dir = Path(args.runs_dir or default_runs_dir())
    seen: list[RunConfig] = []
    before = 0
    for name, cfgs in by_experiment.items():  # each experiment's share: what it adds to those before it
        seen += cfgs
        after = TreePlan.make(unique(seen), runs_dir).tree_tasks
        print(f"  {name:<13} {len(unique(cfgs)):>4} runs, +{after - before} task trainings")
        before = after
    configs = unique(seen)
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
    _say_why(list(tree.pending.values()), runs_dir)
    if args.dry_run:
        return 0
    stats = train_tree(configs, runs_dir, jobs=args.jobs, progress=True)
    print(f"trained {len(tree.pending)} runs ({stats.trained_tasks} task trainings) in {stats.wall_s:.0f} s")
    if stats.trained_tasks:  # what this CPU measured: the reference to add to REFERENCES for its family and model
        from dynnn_lib.core.fingerprint import cpu

        print(f"measured {stats.wall_s * args.jobs / stats.trained_tasks:.2f} s per task training at {args.jobs} jobs "
              f"on CPU family {cpu()['family']}, model {cpu()['model_number']} (core/machines.py REFERENCES)")
    if stats.failed:
        raise ConfigError(f"{len(stats.failed)} run(s) failed; the first: {stats.failed[0]}")
    return 0


def _say_why(pending, runs_dir: Path, shown: int = 3) -> None:
    """Runs to train that the folder holds under another key (the same configuration): what changed, as ``dynnn
    why`` says it, for the first few, and how many such runs there are."""
    from dynnn_lib.engine.why import differences, explain, inputs_of, stored_elsewhere

    found = stored_elsewhere(pending, runs_dir)
    for cfg, folder in found[:shown]:
        reasons = explain(differences(inputs_of(folder), cfg.key_inputs()), folder.name, "now")
        print(f"retraining {cfg.method} seed {cfg.seed} (stored as {folder.name}):\n  " + reasons.replace("\n", "\n  "))
    if len(found) > shown:
        print(f"... and {len(found) - shown} more stored runs retrain (dynnn why KEY for each)")

