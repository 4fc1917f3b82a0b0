"""``dynnn calibrate``: fit the generated stream's knobs to the paper's own numbers, then report what they predict.

The objective was fixed in code before any fit (experiments/objective.py, with its null models and skill) and reads
exactly 54 published numbers (:data:`READS`):

* the paper's finetune matrix, its 45 entries on and below the diagonal (``paper.PAPER_FINETUNE``), against our
  mean finetune matrix on the generated round-1 stream;
* the diagonal of the paper's DynamicNN V2' matrix (9 entries: what heads on a frozen trunk can still learn), against
  our mean V2' (``paper.V2_OVERRIDES``) matrix's diagonal.

:func:`calibration_error` is their RMSE in percent points. Nothing else enters the fit; everything else is a
prediction, reported whatever it says (:func:`held_out`): the 36 off-diagonal entries of V2' and, with
``--predict``, the five variants' square scores.

The objective is measured on the generated instances reserved for fitting (``core/streams.FIT_INSTANCES``, one seed
each: the instance is the unit), as the mean over them of each instance's RMSE; no report of the stand-in's
fidelity reads those instances, and everything reported as its fidelity is measured on evaluation instances the fit
never read (:func:`evaluate`).

The search: Optuna's TPE sampler over :data:`SPACE` (the generator's knobs, core/streams.Knobs, and task 0's
photometric augmentation), trial 0 being the stream before the calibration (``round1``, the "before"), trial 1
the hand-made point :data:`HAND_POINT` and trial 2 the fit in use (``core/round1_calibrated.yaml``); ``--fix
KNOB=VALUE`` holds knobs at a value in every trial, those three included, and searches the others. ``jobs``
trials train side by side on the executors (one process pool for the whole search). Pruning is exact, never a
guess: the finetune matrices' rows arrive one task at a time on every fit instance and a sum of squared errors can
only grow, so after each task the trial's objective is at least
:func:`partial_bound` of what it has so far; a trial whose bound already exceeds the best complete trial's objective
stops there (before its later tasks and its V2' runs). The study is an append-only journal (``make calibrate``:
``params/calibration-study.log``, committed: 1.2 MB after the five searches so far): a search resumes later and on
another machine, a killed one re-queues the trials it was running (their finished tasks are cached).

Cost model: a trial trains finetune (9 tasks) and V2' (8 tasks after the shared task 0) on each fit instance, 17
task trainings per instance, 51 for three; at 4.2 s (family-26 EPYC) to 10.6 s (family-25) per task training
(workbench/plan.py's references, 2 jobs) that is 1.8-4.5 min a trial before pruning.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from dynnn_lib.core import make_all, options
from dynnn_lib.core.config import RunConfig, from_dict
from dynnn_lib.core.streams import CONFIRM_INSTANCES, DEFAULT_KNOBS, EVALUATION_INSTANCES, FIT_INSTANCES
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.experiments.objective import (LOWER, READS, calibration_entries, calibration_error, flat_line, held_out,
                                             null_models, skill)
from dynnn_lib.experiments.paper import PAPER_DYNAMICNN, PAPER_FINETUNE, V2_OVERRIDES
from dynnn_lib.reports import pages


# name -> (kind, low, high): the knobs the fit moves; every other knob keeps its default
SPACE: dict[str, tuple[str, float, float]] = {
    "strong_gain": ("float", 0.8, 1.8),
    "weak_gain": ("float", 0.1, 0.7),
    "weak_noise": ("float", 0.0, 0.1),
    "occlusion_scale": ("float", 0.4, 1.6),
    "complex_distractors": ("int", 0, 6),
    "complex_other_classes": ("bool", 0, 1),
    "complex_noise": ("float", 0.0, 0.3),
    "pixel_large": ("float", 0.6, 1.0),
    "pixel_small": ("float", 0.2, 0.55),
    "pose_spread": ("float", 0.0, math.pi / 2),
    "class_similarity": ("float", 0.0, 0.6),
    "colour_candidates": ("int", 1, 32),      # the fit step's knob (2026-12-03), searched with the others since
    "scenes_per_class": ("int", 0, 40),       # train and test frames of the same recordings (2026-12-04; 0: off)
    "base_photometric": ("float", 0.0, 0.5),   # a training parameter (task 0's augmentation), not a generator knob
}
TRAINING_KNOBS = ("base_photometric",)


# ------------------------------------------------------------------ the objective's bounds (the objective, its null
# models and skill: experiments/objective.py; imported here, where the fit and its reports use them)
def lower_bound(finetune: np.ndarray) -> float:
    """What the objective is at least, from the finetune matrix alone: the same sum of squares over 54 entries
    without the 9 V2' ones (which can only add to it). Lets a hopeless trial skip its V2' runs."""
    return float(np.sqrt(np.sum(((np.asarray(finetune, float) - PAPER_FINETUNE[0])[LOWER] * 100) ** 2) / 54))


def squared_errors(finetune_rows: np.ndarray, upto: int) -> float:
    """The sum of squared errors (points²) of finetune's entries on and below the diagonal in rows 0..upto (the rows
    a run has produced after task `upto`)."""
    ft = np.asarray(finetune_rows, float)
    rows = np.arange(9)[:, None] <= upto
    mask = np.tril(np.ones((9, 9), bool)) & rows
    return float(np.sum(((ft - PAPER_FINETUNE[0])[mask] * 100) ** 2))


def partial_bound(partial_sse: Sequence[float]) -> float:
    """What the objective (the mean over fit instances of each one's RMSE over 54 entries) is at least, given each
    instance's sum of squared errors so far: the entries still to come can only add to every sum. Exact."""
    return float(np.mean([math.sqrt(max(s, 0.0) / 54) for s in partial_sse]))


def bias_and_spread(finetunes: Sequence[Any], v2s: Sequence[Any]) -> dict[str, float]:
    """Where the objective's error over several instances comes from, in points on its 54 entries: ``bias``, the
    RMSE of the mean over the instances (what no number of instances averages away; the part a knob must move) and
    ``spread``, the root mean over the entries of their variance between instances (n - 1). Each instance's squared
    objective is about bias² + spread² on average: a stand-in whose spread is small beside its bias is wrong in
    the same way on every draw, and making instances alike cannot help it."""
    if len(finetunes) < 2 or len(finetunes) != len(v2s):
        raise ConfigError("bias and spread need the matrices of two or more instances, finetune and V2' each")
    entries = np.array([calibration_entries(f, v) for f, v in zip(finetunes, v2s)])
    return {"bias": float(np.sqrt(np.mean(entries.mean(0) ** 2))),
            "spread": float(np.sqrt(np.mean(entries.var(0, ddof=1))))}


# ------------------------------------------------------------------ configurations of a trial
def knob_config(values: Mapping[str, Any], seed: int, base: Mapping[str, Any], overrides: Mapping[str, Any]) -> RunConfig:
    """A run on the round-1 stream with these knob values on top of `base` (RunConfig fields as plain data)."""
    generator = {k: v for k, v in values.items() if k not in TRAINING_KNOBS}
    training = {k: v for k, v in values.items() if k in TRAINING_KNOBS}
    data = {**dict(base.get("data", {})), "stream": "round1"}
    data["generator"] = {**dict(data.get("generator", {})), **generator}
    return from_dict({**dict(base), **training, "data": data, "seed": seed, **overrides})


def trial_configs(values: Mapping[str, Any], seed: int, base: Mapping[str, Any],
                  instance: int | None = None) -> tuple[RunConfig, RunConfig]:
    """(finetune, V2') for one seed (on one generated instance): the two runs a trial's error is read from."""
    if instance is not None:
        base = {**dict(base), "data": {**dict(base.get("data", {})), "data_seed": instance}}
    return knob_config(values, seed, base, {"method": "finetune"}), knob_config(values, seed, base, V2_OVERRIDES)


# The feasibility check, done by hand before this search existed (three of the old constants changed:
# weaker weak and strong light, complex clutter without other classes' objects; finetune RMSE 9.4-10.2 on two
# seeds). Its exact values were not recorded; this is that point in knob terms, queued as trial 1 so the search
# starts from the best point known. It reads nothing the objective does not.
HAND_POINT: dict[str, Any] = {"strong_gain": 1.1, "weak_gain": 0.5, "complex_other_classes": False}


def default_values() -> dict[str, Any]:
    """Today's stream: the knobs' defaults and no photometric augmentation (the "before" trial)."""
    knobs = dataclasses.asdict(DEFAULT_KNOBS)
    return {k: (0.0 if k == "base_photometric" else knobs[k]) for k in SPACE}


def _suggest(trial, names: Sequence[str]) -> dict[str, Any]:
    out = {}
    for name in names:
        kind, lo, hi = SPACE[name]
        if kind == "float":
            out[name] = trial.suggest_float(name, lo, hi)
        elif kind == "int":
            out[name] = trial.suggest_int(name, int(lo), int(hi))
        else:
            out[name] = trial.suggest_categorical(name, [True, False])
    return out


# ------------------------------------------------------------------ the search
@dataclass
class Calibration:
    trials: int = 40
    minutes: float | None = None
    seeds: int = 1                  # seeds per fit instance (the instance is the unit)
    instances: tuple[int, ...] = FIT_INSTANCES
    knobs: tuple[str, ...] = tuple(SPACE)
    base: Mapping[str, Any] = field(default_factory=dict)   # RunConfig fields every run gets (e.g. a schedule)
    fixed: Mapping[str, Any] = field(default_factory=dict)  # knobs of SPACE held at these values (--fix), not searched
    executor: str = "local"
    jobs: int = 2
    address: str | None = None
    runs_dir: str | None = None
    out: str = "reports"
    sampler_seed: int = 0
    progress: bool = True
    journal: str | None = None      # the study's journal (default <out>/calibration-study.log; make calibrate:
                                    # params/calibration-study.log, committed, so a search resumes on another machine)

    def __post_init__(self) -> None:
        if not isinstance(self.trials, int) or self.trials < 1:
            raise ConfigError(f"--trials {self.trials!r} must be a positive integer")
        if self.minutes is not None and not self.minutes > 0:
            raise ConfigError(f"--minutes {self.minutes!r} must be positive")
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise ConfigError(f"--seeds {self.seeds!r} must be a positive integer")
        self.instances = tuple(self.instances)
        if not self.instances or len(set(self.instances)) != len(self.instances):
            raise ConfigError(f"--fit-instances {list(self.instances)!r} must be distinct data seeds")
        if set(self.instances) & set(EVALUATION_INSTANCES):
            raise ConfigError(f"--fit-instances {sorted(set(self.instances) & set(EVALUATION_INSTANCES))} are "
                              "evaluation instances (core/streams.EVALUATION_INSTANCES): a fit must never read them")
        unknown = [k for k in [*self.knobs, *self.fixed] if k not in SPACE]
        if unknown:
            flag = "--fix" if unknown[0] in self.fixed else "--knobs"
            raise ConfigError(f"{flag}: {unknown[0]!r} is not a calibrated knob; choose from {', '.join(SPACE)}")
        self.fixed = dict(sorted(self.fixed.items()))
        self.knobs = tuple(k for k in self.knobs if k not in self.fixed)  # a fixed knob is not searched
        if not self.knobs:
            raise ConfigError("--fix holds every knob --knobs names: nothing is left to search")
        knob_config({**default_values(), **self.fixed}, 0, self.base, {})  # a bad --fix value: one line, here
        ft, _ = trial_configs(default_values(), 0, self.base)  # a bad base fails here, before anything trains
        if ft.data.n_tasks is not None or ft.data.source != "synthetic":
            raise ConfigError("calibration fits the generated round-1 stream's 9 tasks to the paper's 9x9 matrices; "
                              "drop data.n_tasks and data.source from --set")

    def study_name(self) -> str:
        """Same settings, same study (resume, on any machine); other settings start another one in the same file."""
        settings = {"knobs": list(self.knobs), "base": self.base, "seeds": self.seeds,
                    "instances": list(self.instances), "sampler": self.sampler_seed}
        if self.fixed:  # (only then: the studies from before --fix keep their names and resume)
            settings["fixed"] = self.fixed
        blob = json.dumps(settings, sort_keys=True, default=str)
        return "calibration-" + hashlib.sha256(blob.encode()).hexdigest()[:12]

    def code(self) -> str:
        """What a trial's value depends on besides its knobs, as in every run key: the shared code fingerprint and
        the trial methods' own. Each trial records it; a search resumed under other code re-measures a finished
        trial first (:func:`_revalidate`)."""
        from dynnn_lib.core.fingerprint import class_fingerprint, code_fingerprint

        ft, v2 = trial_configs(default_values(), 0, self.base)
        return hashlib.sha256(json.dumps([code_fingerprint(), *(class_fingerprint(c.method_class())
                                                                for c in (ft, v2))]).encode()).hexdigest()[:16]


# A study resumed under other code (or on another CPU) goes on only if a finished trial, measured again here, gives
# the same objective: bit for bit on the CPU that measured it, within this many points on another one (the claims'
# equivalence margin: a difference the paper's own reruns could not tell apart; float kernels differ between CPU
# generations, matrices within 1/32 per entry measured).
REVALIDATE_ATOL = 1.0


def _revalidate(study, cal: "Calibration") -> None:
    """Queue a finished trial's values again when the study's trials were measured under other code or on another
    CPU, and fail (one line) when an earlier re-measurement disagreed: values measured by code that trains otherwise
    never mix with this code's."""
    import optuna

    from dynnn_lib.core.fingerprint import cpu

    TS = optuna.trial.TrialState
    code, here = cal.code(), cpu()["signature"]
    complete = [t for t in study.get_trials(deepcopy=False, states=(TS.COMPLETE,))]
    foreign = [t for t in complete if (t.user_attrs.get("code"), t.user_attrs.get("cpu")) != (code, here)]
    if not foreign:
        return
    checks = [t for t in complete if t.user_attrs.get("code") == code and t.user_attrs.get("cpu") == here
              and "revalidates" in t.user_attrs]
    if checks:
        bad = [t for t in checks if not t.user_attrs.get("agrees")]
        if bad:
            t = bad[0]
            raise ConfigError(f"this study's trials were measured by other code or another CPU, and trial "
                              f"{t.user_attrs['revalidates']} measured again here differs by {t.user_attrs['delta']:+.3f} "
                              f"points: start a new study (--journal NEW_FILE)")
        return
    queued = [t for t in study.get_trials(deepcopy=False, states=(TS.WAITING,)) if "revalidates" in t.user_attrs]
    if not queued:
        ref = min(foreign, key=lambda t: t.number)
        study.enqueue_trial(ref.params, user_attrs={"revalidates": ref.number, "reference": ref.value,
                                                    "reference_cpu": ref.user_attrs.get("cpu")}, skip_if_exists=False)


def _import_optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("dynnn calibrate needs Optuna: pip install 'dynnn[calibrate]' (or pip install optuna)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _matrices(cfgs: Sequence[RunConfig], outcomes) -> list[np.ndarray]:
    out = []
    for cfg in cfgs:
        o = outcomes[cfg.key()]
        if o.status == "failed":
            raise ConfigError(f"a calibration run failed ({cfg.method}, seed {cfg.seed}): {o.error}")
        out.append(np.asarray(o.result.matrix, float))
    return out


def _study(cal: Calibration):
    optuna = _import_optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(cal.journal) if cal.journal else Path(cal.out) / "calibration-study.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    sampler = optuna.samplers.TPESampler(seed=cal.sampler_seed, n_startup_trials=max(3, min(10, cal.trials // 3)))
    return optuna.create_study(storage=JournalStorage(JournalFileBackend(str(path))), study_name=cal.study_name(),
                               direction="minimize", load_if_exists=True, sampler=sampler)


def _row(cfg: RunConfig, runs_dir: Path, t: int) -> np.ndarray:
    """Row t of a run's accuracy matrix after its task t: from its finished result, or its checkpoint."""
    from dynnn_lib.engine.cache import cached_result, load_checkpoint, run_dir
    from dynnn_lib.evaluation.outputs import Outputs

    done = cached_result(cfg, runs_dir)
    if done is not None:
        return np.asarray(done.matrix, float)[t]
    state = load_checkpoint(cfg, run_dir(cfg, runs_dir))
    if state is None or state["completed"] <= t:
        raise ConfigError(f"calibration run {cfg.key()} has no state after task {t}; run dynnn calibrate again")
    return np.asarray(Outputs.from_state(state["outputs"]).score(cfg.head_rule), float)[t]


def calibrate(cal: Calibration) -> dict[str, Any]:
    """Run (or continue) the search; returns the report's data (also written by :func:`write_report`)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    from dynnn_lib.engine.executors import execute

    optuna = _import_optuna()
    study = _study(cal)
    TS = optuna.trial.TrialState
    for t in study.get_trials(deepcopy=False, states=(TS.RUNNING,)):  # a killed calibration: run them again
        study.tell(t.number, state=TS.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
    if not study.trials:
        study.enqueue_trial({k: v for k, v in default_values().items() if k in cal.knobs})  # trial 0: today's stream
        if any(k in cal.knobs for k in HAND_POINT) and cal.trials > 1:                  # trial 1: the hand-made point
            study.enqueue_trial({k: v for k, v in {**default_values(), **HAND_POINT}.items() if k in cal.knobs})
        if cal.trials > 2:  # trial 2: the fit in use (the default stand-in), so a new search starts from it
            study.enqueue_trial({k: v for k, v in fitted_values().items() if k in cal.knobs})
    _revalidate(study, cal)
    from dynnn_lib.core.fingerprint import cpu

    code, here = cal.code(), cpu()["signature"]
    deadline = None if cal.minutes is None else time.monotonic() + cal.minutes * 60
    finished = lambda: len([t for t in study.trials if t.state in (TS.COMPLETE, TS.PRUNED)])  # noqa: E731
    bar = tqdm(total=cal.trials, initial=min(finished(), cal.trials), desc="calibration", unit="trial",
               disable=not cal.progress)
    runs_dir = Path(cal.runs_dir or _runs())
    units = [(k, s) for k in cal.instances for s in range(cal.seeds)]
    pool = (ProcessPoolExecutor(max_workers=cal.jobs, mp_context=mp.get_context("spawn"))
            if cal.executor == "local" and cal.jobs > 1 else None)
    run = lambda cfgs, stop=None: execute(cfgs, runs_dir, cal.executor, cal.jobs, cal.address, progress=False,  # noqa: E731
                                          stop_after=stop, **({"pool": pool} if pool else {}))
    try:
        while finished() < cal.trials and (deadline is None or time.monotonic() < deadline):
            batch = [study.ask() for _ in range(min(max(1, cal.jobs), cal.trials - finished()))]
            values = {tr.number: {**default_values(), **cal.fixed, **_suggest(tr, cal.knobs)} for tr in batch}
            cfgs = {(tr.number, k, s): trial_configs(values[tr.number], s, cal.base, k) for tr in batch
                    for k, s in units}
            rows = {key: np.full((9, 9), np.nan) for key in cfgs}
            alive = list(batch)
            for t in range(9):  # finetune task by task on every fit instance: the rows arrive, the bound grows
                todo = [cfgs[tr.number, k, s][0] for tr in alive for k, s in units]
                outcomes = run(todo, {c.key(): t for c in todo} if t < 8 else None)
                failed = [o for o in outcomes.values() if o.status == "failed"]
                if failed:
                    raise ConfigError(f"a calibration run failed: {failed[0].error}")
                best = study.best_value if _any_complete(study) else math.inf
                still = []
                for tr in alive:
                    check = "revalidates" in tr.user_attrs  # a re-measurement runs to the end
                    for k, s in units:
                        rows[tr.number, k, s][t] = _row(cfgs[tr.number, k, s][0], runs_dir, t)
                    sse = [squared_errors(np.mean([rows[tr.number, k, s] for s in range(cal.seeds)], 0), t)
                           for k in cal.instances]
                    bound = partial_bound(sse)
                    tr.report(bound, t)
                    if bound > best and not check:
                        tr.set_user_attr("stopped", f"after task {t}: objective >= {bound:.2f} > best {best:.2f}")
                        study.tell(tr, state=TS.PRUNED)
                        bar.update(1)
                    else:
                        still.append(tr)
                alive = still
                if not alive:
                    break
            if alive:
                outcomes = run([cfgs[tr.number, k, s][1] for tr in alive for k, s in units])
                failed = [o for o in outcomes.values() if o.status == "failed"]
                if failed:
                    raise ConfigError(f"a calibration run failed: {failed[0].error}")
            for tr in alive:
                per = {}
                for k in cal.instances:
                    ft = np.mean([rows[tr.number, k, s] for s in range(cal.seeds)], 0)
                    v2 = np.mean([_matrices([cfgs[tr.number, k, s][1]], outcomes)[0] for s in range(cal.seeds)], 0)
                    per[k] = (ft, v2)
                value = float(np.mean([calibration_error(ft, v2) for ft, v2 in per.values()]))
                tr.set_user_attr("seeds", cal.seeds)
                tr.set_user_attr("instances", list(cal.instances))
                tr.set_user_attr("code", code)
                tr.set_user_attr("cpu", here)
                if "revalidates" in tr.user_attrs:
                    delta = value - tr.user_attrs["reference"]
                    same_cpu = tr.user_attrs.get("reference_cpu") == here
                    tr.set_user_attr("delta", delta)
                    tr.set_user_attr("agrees", delta == 0.0 if same_cpu else abs(delta) <= REVALIDATE_ATOL)
                tr.set_user_attr("per_instance", {str(k): calibration_error(*m) for k, m in per.items()})
                tr.set_user_attr("finetune", np.mean([m[0] for m in per.values()], 0).tolist())
                tr.set_user_attr("v2", np.mean([m[1] for m in per.values()], 0).tolist())
                study.tell(tr, value)
                bar.update(1)
            bar.set_postfix(best=f"{study.best_value:.2f}" if _any_complete(study) else "-")
            _revalidate(study, cal)  # a re-measurement that disagreed stops the search here
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    return summary(study, cal)


def _any_complete(study) -> bool:
    import optuna

    return any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def _runs() -> str:
    from dynnn_lib.engine.cache import default_runs_dir

    return str(default_runs_dir())


def summary(study, cal: Calibration) -> dict[str, Any]:
    """Before (trial 0, today's stream) and after (the best complete trial), the history, what the fit read."""
    import optuna

    done = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    complete = [t for t in done if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ConfigError("no calibration trial finished; give it more --minutes or --trials")

    def side(t) -> dict[str, Any]:
        out = {"trial": t.number, **score(t.user_attrs["finetune"], t.user_attrs["v2"],
                                          {**default_values(), **cal.fixed, **t.params}, t.user_attrs["seeds"])}
        if "per_instance" in t.user_attrs:  # the objective: the mean over the fit instances of each one's RMSE
            out |= {"objective": t.value, "per_instance": t.user_attrs["per_instance"]}
        return out

    before = next((t for t in complete if t.number == 0), complete[0])
    best = min(complete, key=lambda t: t.value)
    history = [{"trial": t.number, "state": t.state.name.lower(), "value": t.value if t.value is not None else
                (list(t.intermediate_values.values())[-1] if t.intermediate_values else None),
                "params": t.params} for t in done]
    from dynnn_lib.core.fingerprint import machine_line, threads

    span = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
    pruned = [t for t in done if t.state == optuna.trial.TrialState.PRUNED]
    return {"reads": list(READS), "study": cal.study_name(), "knobs": list(cal.knobs), "fixed": dict(cal.fixed),
            "seeds": cal.seeds,
            "fit_instances": list(cal.instances), "pruned": len(pruned),
            "base": dict(cal.base), "trials": len(done), "before": side(before), "after": side(best),
            "history": history, "jobs": cal.jobs, "executor": cal.executor, "null_models": null_models(),
            "wall_minutes": span.total_seconds() / 60, "machine": machine_line(), "threads_per_run": threads()}


def score(finetune: Any, v2: Any, values: Mapping[str, Any], seeds: int) -> dict[str, Any]:
    """One side of the report: mean finetune and V2' matrices scored with the fixed objective, its skill and the
    held-out RMSE."""
    ft, v2 = np.asarray(finetune, float), np.asarray(v2, float)
    entries = calibration_entries(ft, v2)
    return {"values": dict(values), "seeds": seeds, "finetune": ft.tolist(), "v2": v2.tolist(),
            "rmse_calibration": calibration_error(ft, v2), "skill": skill(calibration_error(ft, v2)),
            "rmse_finetune_45": float(np.sqrt(np.mean(entries[:45] ** 2))),
            "rmse_v2_diagonal_9": float(np.sqrt(np.mean(entries[45:] ** 2))),
            "held_out_rmse_v2_offdiagonal_36": held_out(v2)}


# ------------------------------------------------------------------ make all: the committed fit, re-measured
SCHEMA = pages.CALIBRATION_SCHEMA  # the report's document (reports/calibration.json); /3: the fit instances' scores
# from the fit's record (not re-trained), the five variants predicted on the default stand-in only, the paper's matrices;
# /4: the null models and skill (per instance, and the median over the evaluation instances)
FIT_RECORD = Path(__file__).resolve().parents[2] / "params" / "calibration.json"


def fitted_values() -> dict[str, Any]:
    """The default stand-in's fitted values (core/round1_calibrated.yaml: knobs and task-0 augmentation) over the
    defaults."""
    from dynnn_lib.core.streams import DEFAULT_STREAM, load_spec

    spec = load_spec(DEFAULT_STREAM)
    return {**default_values(), **spec.generator, "base_photometric": spec.base_photometric}


def before_values() -> dict[str, Any]:
    """round1's values of every knob the fit set: the search's (default_values) and those a fit step added outside
    :data:`SPACE` (``dynnn calibrate --step KNOB=VALUE``), at their defaults."""
    return {**{k: getattr(DEFAULT_KNOBS, k) for k in fitted_values() if k not in SPACE}, **default_values()}


def evaluation_plan(seeds: int = 1, base: Mapping[str, Any] | None = None, record: str | Path = FIT_RECORD,
                    instances: Sequence[int] | None = None):
    """What :func:`evaluate` reads: (the fit's record, the instances it read, the evaluation instances, the two
    sides, (side, instance, variant) -> one configuration per seed)."""
    from dynnn_lib.core.streams import DEFAULT_STREAM
    from dynnn_lib.experiments.fidelity import SIDE_BY_SIDE, plan
    from dynnn_lib.experiments.paper import PAPER_SCORES, V2_NAME

    record = Path(record)
    if not record.is_file():
        raise ConfigError(f"{record}: no calibration record (the report of the dynnn calibrate that chose "
                          "core/round1_calibrated.yaml); run dynnn calibrate and copy its calibration.json there")
    evaluation = tuple(instances or EVALUATION_INSTANCES[:SIDE_BY_SIDE])
    fit = json.loads(record.read_text())
    if "fit_instances" not in fit:
        raise ConfigError(f"{record} does not say which instances the fit read (fit_instances); add them")
    read = tuple(fit["fit_instances"])
    if set(evaluation) & set(read):
        raise ConfigError(f"instances {sorted(set(evaluation) & set(read))} were read by the fit ({record}); "
                          f"evaluate on others, e.g. {list(EVALUATION_INSTANCES)}")
    sides = {"before": ("round1", before_values()), "after": (DEFAULT_STREAM, fitted_values())}
    groups = {(side, k, name): cfgs for side, (stream, _) in sides.items()
              for (k, name), cfgs in plan(base, seeds, evaluation, "router", stream).items()
              if name in ("finetune", V2_NAME) or (side in PREDICTED and name in PAPER_SCORES)}
    return fit, read, evaluation, sides, groups


PREDICTED = ("after",)  # the sides whose five variants' squares are predicted: the default stand-in's (round1's
# side-by-side is the smaller one, finetune and V2': fidelity.SIDE_BY_SIDE_VARIANTS, to keep make all within the hour)


def evaluate(seeds: int = 1, jobs: int = 2, runs_dir: str | None = None, base: Mapping[str, Any] | None = None,
             progress: bool = True, record: str | Path = FIT_RECORD, instances: Sequence[int] | None = None
             ) -> dict[str, Any]:
    """The committed fit re-measured (``make all``; ``dynnn calibrate --evaluate``) on the stand-in before
    (``round1``) and after (``round1-calibrated``): finetune and V2' on evaluation instances the fit never read
    (`instances`, default the first ``fidelity.SIDE_BY_SIDE`` evaluation instances: the fidelity report's own runs,
    so make all trains them once), `seeds` seeds each, scored with the fixed objective per instance. The headline is
    the evaluation instances' median; the paper's five variants' squares on the default stand-in are predictions
    (mean ± sd over the evaluation instances). What the fit scored on the instances it read (its record's
    ``fit_instances``), the search's trials and history come from `record`, the report of the ``dynnn calibrate``
    that chose the values (core/round1_calibrated.yaml), on the machine and code it ran on."""
    from dynnn_lib.core.fingerprint import machine
    from dynnn_lib.engine.executors import run_many
    from dynnn_lib.evaluation.metrics import overall
    from dynnn_lib.evaluation.stats import mean_sd
    from dynnn_lib.experiments.paper import PAPER_SCORES, V2_NAME

    fit, read, evaluation, sides, groups = evaluation_plan(seeds, base, record, instances)
    results = iter(run_many([c for cs in groups.values() for c in cs], runs_dir, jobs=jobs, progress=progress))
    runs = {key: [next(results) for _ in cfgs] for key, cfgs in groups.items()}
    mean = lambda side, k, name: np.mean([r.matrix for r in runs[side, k, name]], 0)  # noqa: E731
    data = {"reads": list(READS), "study": fit.get("study"), "knobs": list(fitted_values()), "seeds": seeds,
            "machine": machine(), "base": dict(base or {}), "trials": fit["trials"], "history": fit["history"],
            "fit_instances": list(read), "evaluation_instances": list(evaluation), "null_models": null_models(),
            "evaluated": (f"evaluation instances {list(evaluation)} (never read by the fit; the headline is their "
                          f"median), {seeds} seed(s) each, the fidelity report's runs, beside what the fit scored on "
                          f"its instance(s) {list(read)} (its record: {fit.get('machine')})"),
            "search": {k: fit.get(k) for k in ("seeds", "trials", "wall_minutes", "machine", "jobs", "executor",
                                                "threads_per_run")}
            | {"rmse_before": fit["before"].get("search", fit["before"])["rmse_calibration"],
               "rmse_after": fit["after"].get("search", fit["after"])["rmse_calibration"]},
            "steps": [{"change": st["change"], "fit_instances": st["fit_instances"], "adopt": st["adopt"],
                       **{side: st[side]["rmse_calibration"] for side in ("fitted", "with")},
                       **({"confirmed": {"fit_instances": st["confirmed"]["fit_instances"],
                                         **{side: st["confirmed"][side]["rmse_calibration"] for side in ("fitted", "with")}}}
                          if "confirmed" in st else {})}
                      for st in fit.get("steps", [])]}
    for side, (stream, values) in sides.items():
        fts, v2s = ([mean(side, k, name) for k in evaluation] for name in ("finetune", V2_NAME))
        per = {k: score(f, v, values, seeds) for k, f, v in zip(evaluation, fts, v2s)}
        data[side] = {"trial": fit[side]["trial"], "stream": stream,
                      **score(np.mean(fts, 0), np.mean(v2s, 0), values, seeds),
                      **{key: float(np.median([per[k][key] for k in evaluation])) for key in INSTANCE_KEYS},
                      **bias_and_spread(fts, v2s),
                      "fit": {**{key: fit[side][key] for key in RMSE_LABELS},
                              "skill": skill(fit[side]["rmse_calibration"])},
                      "instances": {str(k): {key: per[k][key] for key in INSTANCE_KEYS} for k in per}}
    data["variants"] = {name: {"paper": PAPER_SCORES[name],
                               **{side: mean_sd([float(np.mean([overall(np.asarray(r.matrix)) * 100
                                                                for r in runs[side, k, name]])) for k in evaluation])
                                  if side in PREDICTED else None for side in sides}} for name in PAPER_SCORES}
    return data


def predict_variants(data: dict[str, Any], cal: Calibration, seeds: int) -> dict[str, Any]:
    """Predictions the fit never read: the paper's five variants' square scores on today's stream (before) and the
    fitted one (after), `seeds` seeds each, beside the paper's. Adds ``data["variants"]`` and returns it."""
    from dynnn_lib.engine.executors import execute
    from dynnn_lib.evaluation.metrics import overall
    from dynnn_lib.experiments.paper import PAPER_SCORES, VARIANTS
    from dynnn_lib.evaluation.stats import mean_sd

    out: dict[str, Any] = {}
    for side in ("before", "after"):
        values = data[side]["values"]
        cfgs = {name: [knob_config(values, s, cal.base, ov) for s in range(seeds)] for name, ov in VARIANTS.items()}
        flat = [c for cs in cfgs.values() for c in cs]
        outcomes = execute(flat, cal.runs_dir or _runs(), cal.executor, cal.jobs, cal.address, progress=cal.progress)
        for name, cs in cfgs.items():
            squares = [overall(np.asarray(m)) * 100 for m in _matrices(cs, outcomes)]
            out.setdefault(name, {"paper": PAPER_SCORES[name]})[side] = mean_sd(squares)
    data["variants"] = out
    return out


# ------------------------------------------------------------------ one more knob, judged on the fit instances
def _checked_change(change: Mapping[str, Any]) -> None:
    """A fit step's change names knobs of the generated stream (or a training knob) with valid values."""
    from dynnn_lib.core.streams import make_knobs

    knobs = {f.name for f in dataclasses.fields(DEFAULT_KNOBS)} | set(TRAINING_KNOBS)
    unknown = [k for k in change if k not in knobs]
    if unknown:
        raise ConfigError(f"--step {unknown[0]}: not a knob of the generated stream (core/streams.Knobs)")
    make_knobs({k: v for k, v in change.items() if k not in TRAINING_KNOBS})  # a bad value fails here


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
    _checked_change(change)
    sides = {"before": before_values(), "fitted": fitted_values(), "with": {**fitted_values(), **change}}
    out: dict[str, Any] = {"change": dict(change), "fit_instances": list(instances), "seeds": seeds,
                           "reads": list(READS)}
    for side, scored in _per_instance(sides, instances, seeds, jobs, runs_dir, progress, base).items():
        per = scored["instances"]
        out[side] = {**scored, **{key: float(np.mean([v[key] for v in per.values()])) for key in RMSE_LABELS}}
    out["adopt"] = out["with"]["rmse_calibration"] < out["fitted"]["rmse_calibration"]
    return out


# The adoption rule's last stage (docs/benchmark.md, adopting a fit), written before the fifth search: a change that
# passed the fit instances and the held-back ones is trained on these evaluation instances beside the fit in use,
# on the same machine, and adopted only if it lowers the median objective over the first three (the headline's
# instances, fidelity.SIDE_BY_SIDE) and over all of them.
JUDGE_INSTANCES = tuple(make_all.read()["instances"])  # the fidelity report's (params/make_all.yaml)


def judge(change: Mapping[str, Any], instances: Sequence[int] = JUDGE_INSTANCES, seeds: int = 1, jobs: int = 2,
          runs_dir: str | None = None, progress: bool = True, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A confirmed fit step on the evaluation instances (``dynnn calibrate --step KNOB=VALUE --on-evaluation``):
    the fit in use with and without `change`, scored per instance with the fixed objective; adopted iff the change
    lowers the median over the first ``fidelity.SIDE_BY_SIDE`` instances (the headline's) and over all of them. The
    paired difference over the instances (1-point equivalence margin, evaluation/stats.MARGIN) is reported beside
    the rule; it does not decide. A gate on instances no fit reads, run once per candidate, never a search."""
    from dynnn_lib.evaluation.stats import MARGIN, paired
    from dynnn_lib.experiments.fidelity import SIDE_BY_SIDE

    outside = [k for k in instances if k not in EVALUATION_INSTANCES]
    if len(instances) < 2 or outside:
        raise ConfigError(f"--instances {list(instances)!r}: the last stage reads at least two evaluation instances "
                          f"(core/streams.EVALUATION_INSTANCES {list(EVALUATION_INSTANCES)}), nothing else")
    _checked_change(change)
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


def candidate_values(report: str | Path) -> dict[str, Any]:
    """A search's best (``after.values`` of the calibration.json it wrote), where it differs from the fit in use: the
    change ``dynnn calibrate --confirm`` judges as a fit step on the held-back fit-side instances."""
    path = Path(report)
    try:
        values = json.loads(path.read_text())["after"]["values"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"--confirm {path}: not a search's report (a calibration.json with after.values)") from None
    fitted = fitted_values()
    return {k: v for k, v in values.items() if fitted.get(k) != v}


# ------------------------------------------------------------------ for the notebook (08_calibration)
RMSE_LABELS = {"rmse_finetune_45": "finetune, 45 entries (fitted)", "rmse_v2_diagonal_9": "V2' diagonal, 9 (fitted)",
               "rmse_calibration": "the objective: all 54", "held_out_rmse_v2_offdiagonal_36":
               "held out: V2' below the diagonal, 36 (a prediction)"}
INSTANCE_KEYS = (*RMSE_LABELS, "skill")  # what each instance's score keeps: the four RMSEs and the objective's skill


def knob_table():
    """Each calibrated value before the calibration (round1) and in the default stand-in (a pandas DataFrame)."""
    import pandas as pd

    before, after, shown = before_values(), fitted_values(), pages.knob_value
    return pd.DataFrame([{"knob": k, "round1": shown(before[k]), "round1-calibrated": shown(after[k])} for k in after]
                        ).set_index("knob")


def rmse_table(data: Mapping[str, Any]):
    """RMSE against the paper, in points, before and after, and the objective's skill after it (a pandas
    DataFrame)."""
    import pandas as pd

    labels = [*RMSE_LABELS.items()]
    labels.insert(3, ("skill", "the objective's skill (1 − MSE / MSE of the flat line; no unit)"))  # after the objective
    return pd.DataFrame([{"RMSE (points)": label, "before": round(data["before"][k], 2), "after": round(data["after"][k], 2)}
                         for k, label in labels]).set_index("RMSE (points)")


def matrices_figure(data: Mapping[str, Any], which: str = "finetune"):
    """The paper's matrix beside ours before and after (``which``: finetune or v2), then ours − the paper."""
    from dynnn_lib.reports.figures import error_heatmap, heatmap, side_by_side

    paper = PAPER_FINETUNE if which == "finetune" else PAPER_DYNAMICNN
    label = "finetune" if which == "finetune" else "V2'"
    mats = side_by_side([heatmap(paper[0], None, title=f"the paper: {label}", zmin=50),
                         heatmap(data["before"][which], None, title=f"ours before (round1)", zmin=50),
                         heatmap(data["after"][which], None, title=f"ours after (round1-calibrated)", zmin=50)])
    errs = side_by_side([error_heatmap(pages.lower_difference(data[side][which], paper[0]),
                                       title=f"ours − the paper, {side}") for side in ("before", "after")])
    return mats, errs


def history_figure(record: str | Path = FIT_RECORD, history: Sequence[Mapping[str, Any]] | None = None):
    """The search: each trial's error and the best so far, from `history` (a document's), else from the record of
    the search that chose the fit in use (params/calibration.json)."""
    if history is None:
        history = json.loads(Path(record).read_text())["history"]
    return pages.search_history_figure(history)


# ------------------------------------------------------------------ the report
def document(data: Mapping[str, Any]) -> dict[str, Any]:
    """The report's document (reports/calibration.json): `data` (:func:`calibrate`, :func:`evaluate`: with the null
    models the objective is judged beside), its schema and the paper's two matrices the pages compare against (their
    upper triangles null)."""
    return {"schema": SCHEMA, **data,
            "paper": {"finetune": pages.matrix_json(PAPER_FINETUNE[0]), "v2": pages.matrix_json(PAPER_DYNAMICNN[0])}}


def write_report(data: Mapping[str, Any], out: str | Path) -> list[Path]:
    """reports/calibration.json (:func:`document`), then calibration.md and .html (heatmaps of ours − the paper,
    before and after) rendered from it (reports/pages.py); returns the .md, .html and .json paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md, page = out / "calibration.md", out / "calibration.html"
    path, *_ = pages.publish(document(data), out / "calibration.json", {md: pages.calibration_md,
                                                                         page: pages.calibration_html})
    return [md, page, path]


# ------------------------------------------------------------------ dynnn calibrate
def add_arguments(ap) -> None:
    s = make_all.read()  # the defaults: make calibrate's (params/make_all.yaml)
    ap.add_argument("--trials", type=int, default=s["cal_trials"],
                    help=f"trials to finish in all (a re-run continues; default {s['cal_trials']})")
    ap.add_argument("--minutes", type=float, help="stop starting trials after this many minutes")
    ap.add_argument("--seeds", type=int, default=s["cal_seeds"],
                    help=f"seeds per fit instance (default {s['cal_seeds']}: the instance is the unit)")
    ap.add_argument("--fit-instances", type=int, nargs="+", default=None, metavar="DATA_SEED",
                    help=f"the instances the objective reads (default {' '.join(map(str, FIT_INSTANCES))}: "
                         "core/streams.FIT_INSTANCES, never an evaluation instance; with --confirm "
                         f"{' '.join(map(str, CONFIRM_INSTANCES))})")
    ap.add_argument("--journal", default=None, help="the study's journal (default <out>/calibration-study.log; make "
                                                    "calibrate: params/calibration-study.log, committed, so a search "
                                                    "resumes on another machine)")
    ap.add_argument("--knobs", nargs="+", metavar="KNOB", help="fit only these knobs (default: all of calibrate.SPACE)")
    ap.add_argument("--fix", nargs="+", metavar="KNOB=VALUE",
                    help="hold these knobs at these values and search the others (trials 0-2 too: round1, the "
                         "hand-made point and the fit in use, each with them), e.g. --fix scenes_per_class=30")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="a RunConfig field every calibration run gets, e.g. --set inc_epochs=4 (YAML values)")
    ap.add_argument("--executor", choices=["local", "ray"], default="local")
    ap.add_argument("--address", help="Ray cluster address (with --executor ray)")
    options.jobs(ap)
    options.runs_dir(ap)
    ap.add_argument("--out", default="reports", help="folder for calibration.md/.html/.json and the study (default reports/)")
    ap.add_argument("--predict-seeds", type=int, default=0, metavar="N",
                    help="then run the paper's five variants on today's and the fitted stream, N seeds each: their "
                         "square scores are predictions the fit never read (default 0: skip)")
    ap.add_argument("--instances", type=int, nargs="+", default=None,
                    help="with --evaluate: the evaluation instances (default: the fidelity side-by-side's, "
                         "core/streams.EVALUATION_INSTANCES); with --on-evaluation: those it judges on (default "
                         f"{' '.join(map(str, JUDGE_INSTANCES))})")
    ap.add_argument("--evaluate", action="store_true",
                    help="no search: re-measure the committed fit (core/round1_calibrated.yaml against round1) with "
                         "--seeds seeds and write the report with the search history of --record (make all)")
    ap.add_argument("--step", nargs="+", metavar="KNOB=VALUE",
                    help="no search: the committed fit with and without this change on the fit instances; adopted iff "
                         "their mean objective falls (writes <out>/calibration-step.json)")
    ap.add_argument("--confirm", metavar="REPORT",
                    help="no search: a search's best (after.values of its calibration.json) as a fit step on the "
                         "held-back fit-side instances (default core/streams.CONFIRM_INSTANCES): a candidate iff it "
                         "beats the fit in use there too (writes <out>/calibration-step.json)")
    ap.add_argument("--on-evaluation", action="store_true",
                    help="with --step or --confirm: the adoption rule's last stage instead, for a change that passed "
                         "the fit and held-back instances: it and the fit in use trained on evaluation instances "
                         "(--instances); adopted iff it lowers the median objective over the first three and over "
                         "all (writes <out>/calibration-judged.json)")
    ap.add_argument("--record", default=str(FIT_RECORD),
                    help="with --evaluate: the report of the search that chose the fit (default params/calibration.json)")
    options.no_progress(ap)


def command(args) -> int:
    """dynnn calibrate: fit the knobs, then write reports/calibration.md|html|json."""
    from dynnn_lib.core.config import apply_assignments

    if args.on_evaluation and not (args.step or args.confirm):
        raise ConfigError("--on-evaluation judges a change: give it with --step KNOB=VALUE or --confirm REPORT")
    if args.evaluate:
        if args.seeds < 1 or args.jobs < 1:
            raise ConfigError("--seeds and --jobs must be at least 1")
        data = evaluate(seeds=args.seeds, jobs=args.jobs, runs_dir=args.runs_dir, record=args.record,
                        instances=args.instances,
                        base=apply_assignments({}, args.set or []), progress=not args.no_progress)
        return _written(data, write_report(data, args.out))
    if args.step or args.confirm:
        from dynnn_lib.core.config import parse_value

        bad = [a for a in args.step or [] if "=" not in a]
        if bad:
            raise ConfigError(f"--step {bad[0]!r}: write KNOB=VALUE, e.g. --step colour_candidates=16")
        change = {k: parse_value(v) for k, v in (a.split("=", 1) for a in args.step or [])}
        if args.confirm:
            change = {**candidate_values(args.confirm), **change}
            if not change:
                raise ConfigError(f"--confirm {args.confirm}: the search's best is the fit in use; nothing to confirm")
        from dynnn_lib.core.store import atomic_text

        Path(args.out).mkdir(parents=True, exist_ok=True)
        if args.on_evaluation:
            out = judge(change, tuple(args.instances or JUDGE_INSTANCES), args.seeds, args.jobs, args.runs_dir,
                        progress=not args.no_progress, base=apply_assignments({}, args.set or []))
            atomic_text(Path(args.out) / "calibration-judged.json", json.dumps(out, indent=1) + "\n")
            from dynnn_lib.evaluation.stats import Paired

            m = lambda side, part: out[side][f"median_{part}"]["rmse_calibration"]  # noqa: E731
            med = {side: f"{m(side, 'headline'):.2f} (first {len(out['headline'])}) / {m(side, 'all'):.2f} (all, "
                         f"{_split(out[side])})" for side in ("fitted", "with")}
            diff = Paired.from_dict(out["paired"]["rmse_calibration"])
            print(f"median objective over evaluation instances {out['evaluation_instances']}: the fit {med['fitted']}, "
                  f"with {out['change']} {med['with']}; paired {diff.describe(scale=1)}: "
                  + ("adopt it" if out["adopt"] else "keep the fit"))
            return 0
        instances = tuple(args.fit_instances or (CONFIRM_INSTANCES if args.confirm else FIT_INSTANCES))
        out = step(change, instances, args.seeds, args.jobs, args.runs_dir, progress=not args.no_progress,
                   base=apply_assignments({}, args.set or []))
        atomic_text(Path(args.out) / "calibration-step.json", json.dumps(out, indent=1) + "\n")
        rmse = {side: f"{out[side]['rmse_calibration']:.2f}" + (f" ({_split(out[side])})" if "bias" in out[side] else "")
                for side in ("before", "fitted", "with")}
        print(f"objective (mean over fit instances {out['fit_instances']}): round1 {rmse['before']}, the fit "
              f"{rmse['fitted']}, with {out['change']} {rmse['with']}: " + ("adopt it" if out["adopt"] else "keep the fit"))
        return 0
    from dynnn_lib.core.config import parse_value

    bad = [a for a in args.fix or [] if "=" not in a]
    if bad:
        raise ConfigError(f"--fix {bad[0]!r}: write KNOB=VALUE, e.g. --fix scenes_per_class=30")
    fixed = {k: parse_value(v) for k, v in (a.split("=", 1) for a in args.fix or [])}
    cal = Calibration(trials=args.trials, minutes=args.minutes, seeds=args.seeds, knobs=tuple(args.knobs or SPACE),
                      fixed=fixed,
                      base=apply_assignments({}, args.set or []), executor=args.executor, jobs=args.jobs,
                      address=args.address, runs_dir=args.runs_dir, out=args.out, progress=not args.no_progress,
                      instances=tuple(args.fit_instances or FIT_INSTANCES), journal=args.journal)
    data = calibrate(cal)
    if args.predict_seeds:
        predict_variants(data, cal, args.predict_seeds)
    return _written(data, write_report(data, args.out))


def _split(side: Mapping[str, Any]) -> str:
    """"bias B, spread S" of a side scored on two or more instances (:func:`bias_and_spread`)."""
    return f"bias {side['bias']:.2f}, spread {side['spread']:.2f}"


def _written(data: Mapping[str, Any], paths: Sequence[Path]) -> int:
    b, a = data["before"], data["after"]
    print(f"calibration: {data['trials']} trials; RMSE on the 54 calibration entries {b['rmse_calibration']:.2f} -> "
          f"{a['rmse_calibration']:.2f} points, skill {b['skill']:.2f} -> {a['skill']:.2f} (the flat line "
          f"{calibration_error(*flat_line()):.2f}: skill 0; finetune {b['rmse_finetune_45']:.2f} -> "
          f"{a['rmse_finetune_45']:.2f}, "
          f"V2' diagonal {b['rmse_v2_diagonal_9']:.2f} -> {a['rmse_v2_diagonal_9']:.2f}); held out, V2' off-diagonal "
          f"{b['held_out_rmse_v2_offdiagonal_36']:.2f} -> {a['held_out_rmse_v2_offdiagonal_36']:.2f}")
    print("wrote " + ", ".join(map(str, paths)))
    return 0
