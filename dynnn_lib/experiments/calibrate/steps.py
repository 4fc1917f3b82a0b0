"""One more knob, judged (``dynnn calibrate --step``, ``--confirm``, ``--on-evaluation``): the fit in use with and
without a change, scored with the fixed objective per instance, adopted by a rule fixed before the runs; first on
the fit instances, then on the held-back fit-side ones, last on evaluation instances (:func:`judge`).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from dynnn_lib.core import make_all
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.core.streams import EVALUATION_INSTANCES, FIT_INSTANCES
from dynnn_lib.experiments.calibrate.knobs import before_values, checked_change, fitted_values, trial_configs
from dynnn_lib.experiments.calibrate.scoring import INSTANCE_KEYS, RMSE_LABELS, bias_and_spread, score
from dynnn_lib.experiments.objective import READS


def _per_instance(sides: Mapping[str, Mapping[str, Any]], instances: Sequence[int], seeds: int, jobs: int,
                  runs_dir: str | None, progress: bool, base: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Each side's values trained (finetune and V2', `seeds` seeds) on each instance and scored with the fixed
    objective: {side: {"values": ..., "instances": {"k": {RMSE label: value}}}}."""
    from dynnn_lib.engine.executors import run_many

    cfgs = {(side, k, s): trial_configs(values, s, dict(base or {}), k) for side, values in sides.items()
            for k in instances for s in range(seeds)}
    results = iter(run_many([c for pair in cfgs.values() for c in pair], runs_dir, jobs=jobs, progress=progress))
    matrices = {key: [np.asarray(next(results).matrix) for _ in pair] for key, pair in cfgs.items()}
    out = {}
    for side, values in sides.items():
        per = {str(k): score(np.mean([matrices[side, k, s][0] for s in range(seeds)], 0),
                             np.mean([matrices[side, k, s][1] for s in range(seeds)], 0), values, seeds)
               for k in instances}
        out[side] = {"values": dict(values), "instances": {k: {key: v[key] for key in INSTANCE_KEYS}
                                                           for k, v in per.items()}}
        if len(instances) > 1:
            out[side].update(bias_and_spread(*zip(*[(v["finetune"], v["v2"]) for v in per.values()])))
    return out


def step(change: Mapping[str, Any], instances: Sequence[int] = FIT_INSTANCES, seeds: int = 1, jobs: int = 2,
         runs_dir: str | None = None, progress: bool = True, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A fit step (``dynnn calibrate --step KNOB=VALUE``): the fitted stand-in with and without `change`, and
    ``round1`` before any fit, scored with the fixed objective on each fit instance (`instances`, never an
    evaluation one). The rule, fixed before the runs: `change` is adopted iff the mean over the instances of each
    one's objective is lower with it. Nothing else is read; the evaluation instances stay predictions."""
    if not instances or set(instances) & set(EVALUATION_INSTANCES):
        raise ConfigError(f"--fit-instances {list(instances)!r}: a fit step reads fit instances only, never "
                          f"{list(EVALUATION_INSTANCES)}")
    checked_change(change)
    sides = {"before": before_values(), "fitted": fitted_values(), "with": {**fitted_values(), **change}}
    out: dict[str, Any] = {"change": dict(change), "fit_instances": list(instances), "seeds": seeds,
                           "reads": list(READS)}
    for side, scored in _per_instance(sides, instances, seeds, jobs, runs_dir, progress, base).items():
        per = scored["instances"]
        out[side] = {**scored, **{key: float(np.mean([v[key] for v in per.values()])) for key in RMSE_LABELS}}
    out["adopt"] = out["with"]["rmse_calibration"] < out["fitted"]["rmse_calibration"]
    return out


def judge_instances() -> tuple[int, ...]:
    """The adoption rule's last stage (docs/benchmark.md, adopting a fit), written before the fifth search: a change
    that passed the fit instances and the held-back ones is trained on the fidelity report's evaluation instances
    (make all's, params/make_all.yaml) beside the fit in use, on the same machine, and adopted only if it lowers the
    median objective over the first three (the headline's instances, fidelity.SIDE_BY_SIDE) and over all of them."""
    return tuple(make_all.read()["instances"])


def judge(change: Mapping[str, Any], instances: Sequence[int] | None = None, seeds: int = 1, jobs: int = 2,
          runs_dir: str | None = None, progress: bool = True, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A confirmed fit step on the evaluation instances (``dynnn calibrate --step KNOB=VALUE --on-evaluation``):
    the fit in use with and without `change`, scored per instance with the fixed objective; adopted iff the change
    lowers the median over the first ``fidelity.SIDE_BY_SIDE`` instances (the headline's) and over all of them. The
    paired difference over the instances (1-point equivalence margin, evaluation/stats.MARGIN) is reported beside
    the rule; it does not decide. A gate on instances no fit reads, run once per candidate, never a search."""
    from dynnn_lib.evaluation.stats import MARGIN, paired
    from dynnn_lib.experiments.fidelity import SIDE_BY_SIDE

    instances = tuple(judge_instances() if instances is None else instances)
    outside = [k for k in instances if k not in EVALUATION_INSTANCES]
    if len(instances) < 2 or outside:
        raise ConfigError(f"--instances {list(instances)!r}: the last stage reads at least two evaluation instances "
                          f"(core/streams.EVALUATION_INSTANCES {list(EVALUATION_INSTANCES)}), nothing else")
    checked_change(change)
    sides = {"fitted": fitted_values(), "with": {**fitted_values(), **change}}
    head = list(instances)[:SIDE_BY_SIDE]
    out: dict[str, Any] = {"change": dict(change), "evaluation_instances": list(instances), "headline": head,
                           "seeds": seeds, "reads": list(READS)}
    for side, scored in _per_instance(sides, instances, seeds, jobs, runs_dir, progress, base).items():
        per = scored["instances"]
        out[side] = {**scored, **{f"median_{part}": {key: float(np.median([per[str(k)][key] for k in ks]))
                                                     for key in RMSE_LABELS}
                                  for part, ks in (("headline", head), ("all", instances))}}
    out["paired"] = {key: paired([out["with"]["instances"][str(k)][key] for k in instances],
                                 [out["fitted"]["instances"][str(k)][key] for k in instances],
                                 margin=MARGIN * 100).to_dict() for key in RMSE_LABELS}
    out["adopt"] = all(out["with"][f"median_{part}"]["rmse_calibration"]
                       < out["fitted"][f"median_{part}"]["rmse_calibration"] for part in ("headline", "all"))
    return out
