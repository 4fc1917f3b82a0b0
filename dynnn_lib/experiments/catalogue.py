"""The built-in experiments, registered with the contract (experiments/contract.py): the runs each needs under
``make all``'s settings, the document it writes, the README/docs blocks rendered from that document and its
command. ``dynnn plan`` trains the union of the runs of those ``in_all``; ``dynnn readme`` renders the blocks.
(The notebooks' runs are registered beside the notebook batch, workbench/plan.py.)
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from dynnn_lib.core.config import RunConfig
from dynnn_lib.experiments import baselines, calibrate, fidelity, reproduce, schedules
from dynnn_lib.experiments.contract import Command, Experiment, Settings, register
from dynnn_lib.reports import blocks


def _flat(groups) -> list[RunConfig]:
    return [c for cfgs in groups.values() for c in cfgs]


def reproduction_runs(s: Settings) -> list[RunConfig]:
    """The paper's five variants, repro_seeds seeds, on the reproduction's instance."""
    return _flat(reproduce.variant_configs(reproduce.on_its_instance(None), range(s.repro_seeds)))


def paper_configs(seeds: int, instances: Sequence[int] = (0,), base: Mapping[str, Any] | None = None,
                  streams: Sequence[str | None] = (None,), first: int = 0) -> list[RunConfig]:
    """The fidelity report's runs for seeds 0..seeds-1: the five headline variants, V2' and the automatic rule on every
    instance of the first stand-in in `streams`, finetune and V2' on the side-by-side's instances of the others
    (fidelity.instances_of, variants_of); `first`: the position of ``streams[0]`` among make all's stand-ins."""
    return [c for i, st in enumerate(streams, first)
            for c in _flat(fidelity.plan(base, seeds, fidelity.instances_of(i, instances), stream=st,
                                         variants=fidelity.variants_of(i)))]


def fidelity_runs(s: Settings) -> list[RunConfig]:
    """The default stand-in's (the first of `streams`), on every evaluation instance."""
    return paper_configs(s.seeds, s.instances, streams=s.streams[:1])


def standins_runs(s: Settings) -> list[RunConfig]:
    """Every other stand-in's: finetune and V2' on the side-by-side's instances."""
    return paper_configs(s.seeds, s.instances, streams=s.streams[1:], first=1)


def calibration_runs(s: Settings) -> list[RunConfig]:
    """Finetune and V2' of both stand-ins on the fit's instances and the evaluation instances, the five variants on
    the latter (calibrate.evaluate)."""
    return _flat(calibrate.evaluation_plan(s.seeds, instances=s.instances[:fidelity.SIDE_BY_SIDE])[-1])


def baselines_runs(s: Settings) -> list[RunConfig]:
    """make baselines: the compared methods, baseline_seeds seeds (params/make_all.yaml)."""
    return _flat(reproduce.variant_configs(None, range(s.baseline_seeds), baselines.variants()))


def schedules_runs(s: Settings) -> list[RunConfig]:
    """make schedules: at most max_heads heads, sched_seeds seeds (params/make_all.yaml)."""
    return schedules.plan(None, range(s.sched_seeds), max_heads=s.max_heads).configs()


register(Experiment(
    name="reproduction", schema=reproduce.SCHEMA, runs=reproduction_runs, document="reproduction.json",
    blocks={"reproduction": blocks.reproduction},
    command=Command("reproduce", "the paper's five variants, poster-style table per head rule",
                    reproduce.add_arguments, reproduce.command),
    summary="the paper's headline table on one instance"))
register(Experiment(
    name="fidelity", schema=fidelity.SCHEMA, runs=fidelity_runs, document="fidelity.json",
    blocks={"fidelity": blocks.fidelity},
    command=Command("fidelity", "the fidelity report: the paper's claims judged over instances, paired 95 %% "
                                "intervals (make fidelity)", fidelity.add_arguments, fidelity.command),
    summary="the paper's claims over the evaluation instances"))
register(Experiment(
    name="standins", schema=fidelity.STANDINS_SCHEMA, runs=standins_runs, document="standins.json",
    blocks={"standins": blocks.standins},
    summary="the claims on the stand-in before the calibration, side by side (written by dynnn fidelity)"))
register(Experiment(
    name="calibration", schema=calibrate.SCHEMA, runs=calibration_runs, document="calibration.json",
    blocks={"calibration": blocks.calibration},
    command=Command("calibrate", "fit the generated stream's knobs to the paper's finetune matrix and V2' diagonal "
                                 "(Optuna); --evaluate re-measures the fit: reports/calibration.md|html|json",
                    calibrate.add_arguments, calibrate.command),
    summary="the committed fit re-measured on the fit's and the evaluation instances"))
register(Experiment(
    name="baselines", schema=baselines.SCHEMA, runs=baselines_runs, document="baselines.json",
    blocks={"baselines": blocks.baselines_md}, in_all=False,
    command=Command("baselines", "DynamicNN beside LwF, EWC, online EWC, replay and joint (paired 95 %% CIs)",
                    baselines.add_arguments, baselines.command),
    summary="DynamicNN beside the in-workbench baselines (make baselines)"))
register(Experiment(
    name="schedules", schema=schedules.SCHEMA, runs=schedules_runs, document="schedules.json", in_all=False,
    command=Command("schedules", "every expansion schedule trained as a tree of shared prefixes: the best, the "
                                 "paper's, the automatic rule's, the Pareto front of square vs heads",
                    schedules.add_arguments, schedules.command),
    summary="every expansion schedule as a tree (make schedules)"))
