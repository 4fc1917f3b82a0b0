"""The search (``dynnn calibrate``): Optuna's TPE sampler over the knobs (knobs.SPACE), trial 0 the stream before
the calibration, 1 the hand-made point, 2 the fit in use. Pruning is exact, never a guess: finetune's rows arrive one
task at a time on every fit instance and a sum of squared errors can only grow (scoring.partial_bound). The study is
an append-only journal, so a search resumes later and on another machine; resumed under other code or on another
CPU it re-measures a finished trial first (:func:`_revalidate`).
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from dynnn_lib.core import make_all
from dynnn_lib.core.config import RunConfig
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.core.streams import EVALUATION_INSTANCES, FIT_INSTANCES
from dynnn_lib.experiments.calibrate.knobs import (FIT_STREAM, HAND_POINT, SPACE, default_values, fitted_values,
                                                   knob_config, stream_tasks, suggest, trial_configs)
from dynnn_lib.experiments.calibrate.scoring import partial_bound, score, squared_errors
from dynnn_lib.experiments.objective import READS, calibration_error, null_models


@dataclass
class Calibration:
    """A search's settings (``dynnn calibrate``'s options); the trials and seeds default to make calibrate's."""

    trials: int = field(default_factory=lambda: make_all.read()["cal_trials"])
    minutes: float | None = None
    seeds: int = field(default_factory=lambda: make_all.read()["cal_seeds"])  # per fit instance (the unit)
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
            raise ConfigError(f"calibration fits the generated {FIT_STREAM} stream's {stream_tasks()} tasks to the "
                              "paper's matrices; drop data.n_tasks and data.source from --set")

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


def import_optuna():
    """Optuna, quiet below warnings (a search's history is read and written through it); a one-line error where it
    is not installed."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("dynnn calibrate needs Optuna: pip install 'dynnn[calibrate]' (or pip install optuna)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def matrices(cfgs: Sequence[RunConfig], outcomes) -> list[np.ndarray]:
    out = []
    for cfg in cfgs:
        o = outcomes[cfg.key()]
        if o.status == "failed":
            raise ConfigError(f"a calibration run failed ({cfg.method}, seed {cfg.seed}): {o.error}")
        out.append(np.asarray(o.result.matrix, float))
    return out


def _study(cal: Calibration):
    optuna = import_optuna()
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
    """Run (or continue) the search; returns the report's data (also written by evaluate.write_report)."""
    optuna = import_optuna()
    study = _study(cal)
    _requeue_and_seed(study, cal, optuna.trial.TrialState)
    _revalidate(study, cal)
    search = _Search(cal, study, optuna.trial.TrialState)
    try:
        while search.finished() < cal.trials and (search.deadline is None or time.monotonic() < search.deadline):
            search.batch()
    finally:
        search.close()
    return summary(study, cal)


def _requeue_and_seed(study: Any, cal: Calibration, TS: Any) -> None:
    """A killed search's running trials run again (their finished tasks are cached); a new study starts from the
    three named points: trial 0 the stream before the fit, 1 the hand-made point, 2 the fit in use."""
    for t in study.get_trials(deepcopy=False, states=(TS.RUNNING,)):
        study.tell(t.number, state=TS.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
    if study.trials:
        return
    study.enqueue_trial({k: v for k, v in default_values().items() if k in cal.knobs})
    if any(k in cal.knobs for k in HAND_POINT) and cal.trials > 1:
        study.enqueue_trial({k: v for k, v in {**default_values(), **HAND_POINT}.items() if k in cal.knobs})
    if cal.trials > 2:  # so that a new search starts from the fit in use
        study.enqueue_trial({k: v for k, v in fitted_values().items() if k in cal.knobs})


class _Search:
    """The search loop's state for one call: a batch of `jobs` trials trains finetune task by task on every fit
    instance, each trial pruned exactly as soon as its bound passes the best complete trial, then V2' for those
    left; one process pool serves the whole search."""

    def __init__(self, cal: Calibration, study: Any, TS: Any) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from tqdm.auto import tqdm

        from dynnn_lib.core.fingerprint import cpu

        self.cal, self.study, self.TS = cal, study, TS
        self.code, self.cpu = cal.code(), cpu()["signature"]
        self.deadline = None if cal.minutes is None else time.monotonic() + cal.minutes * 60
        self.bar = tqdm(total=cal.trials, initial=min(self.finished(), cal.trials), desc="calibration", unit="trial",
                        disable=not cal.progress)
        self.runs_dir = Path(cal.runs_dir or default_runs())
        self.units = [(k, s) for k in cal.instances for s in range(cal.seeds)]
        self.tasks = stream_tasks()
        self.pool = (ProcessPoolExecutor(max_workers=cal.jobs, mp_context=mp.get_context("spawn"))
                     if cal.executor == "local" and cal.jobs > 1 else None)

    def finished(self) -> int:
        return len([t for t in self.study.trials if t.state in (self.TS.COMPLETE, self.TS.PRUNED)])

    def close(self) -> None:
        self.bar.close()
        if self.pool is not None:
            self.pool.shutdown()

    def execute(self, cfgs: Sequence[RunConfig], stop: Mapping[str, int] | None = None) -> dict[str, Any]:
        """Train `cfgs` (each up to its task in `stop`); a failed run stops the search (one line)."""
        from dynnn_lib.engine.executors import execute

        cal = self.cal
        outcomes = execute(cfgs, self.runs_dir, cal.executor, cal.jobs, cal.address, progress=False, stop_after=stop,
                           **({"pool": self.pool} if self.pool else {}))
        failed = [o for o in outcomes.values() if o.status == "failed"]
        if failed:
            raise ConfigError(f"a calibration run failed: {failed[0].error}")
        return outcomes

    def batch(self) -> None:
        """Ask for the next trials, train them (pruning) and tell the study each survivor's objective."""
        cal, study = self.cal, self.study
        batch = [study.ask() for _ in range(min(max(1, cal.jobs), cal.trials - self.finished()))]
        values = {tr.number: {**default_values(), **cal.fixed, **suggest(tr, cal.knobs)} for tr in batch}
        cfgs = {(tr.number, k, s): trial_configs(values[tr.number], s, cal.base, k) for tr in batch
                for k, s in self.units}
        rows = {key: np.full((self.tasks, self.tasks), np.nan) for key in cfgs}
        alive = self.finetune(batch, cfgs, rows)
        outcomes = self.execute([cfgs[tr.number, k, s][1] for tr in alive for k, s in self.units]) if alive else {}
        for tr in alive:
            self.tell(tr, rows, cfgs, outcomes)
        self.bar.set_postfix(best=f"{study.best_value:.2f}" if _any_complete(study) else "-")
        _revalidate(study, cal)  # a re-measurement that disagreed stops the search here

    def finetune(self, batch: list, cfgs: dict, rows: dict) -> list:
        """Finetune task by task on every fit instance: the rows arrive, each trial's bound grows; the trials still
        alive after the last task."""
        alive = list(batch)
        for t in range(self.tasks):
            todo = [cfgs[tr.number, k, s][0] for tr in alive for k, s in self.units]
            self.execute(todo, {c.key(): t for c in todo} if t < self.tasks - 1 else None)
            best = self.study.best_value if _any_complete(self.study) else math.inf
            alive = [tr for tr in alive if self.keeps(tr, t, cfgs, rows, best)]
            if not alive:
                break
        return alive

    def keeps(self, tr: Any, t: int, cfgs: dict, rows: dict, best: float) -> bool:
        """Read row t of the trial's matrices; prune it (False) when its bound already exceeds `best` (never a
        re-measurement, which runs to the end)."""
        seeds = range(self.cal.seeds)
        for k, s in self.units:
            rows[tr.number, k, s][t] = _row(cfgs[tr.number, k, s][0], self.runs_dir, t)
        bound = partial_bound([squared_errors(np.mean([rows[tr.number, k, s] for s in seeds], 0), t)
                               for k in self.cal.instances])
        tr.report(bound, t)
        if bound <= best or "revalidates" in tr.user_attrs:
            return True
        tr.set_user_attr("stopped", f"after task {t}: objective >= {bound:.2f} > best {best:.2f}")
        self.study.tell(tr, state=self.TS.PRUNED)
        self.bar.update(1)
        return False

    def tell(self, tr: Any, rows: dict, cfgs: dict, outcomes: dict) -> None:
        """A complete trial: its objective (the mean over the fit instances of each one's) and what it recorded."""
        seeds = range(self.cal.seeds)
        per = {k: (np.mean([rows[tr.number, k, s] for s in seeds], 0),
                   np.mean([matrices([cfgs[tr.number, k, s][1]], outcomes)[0] for s in seeds], 0))
               for k in self.cal.instances}
        value = float(np.mean([calibration_error(ft, v2) for ft, v2 in per.values()]))
        for key, v in {"seeds": self.cal.seeds, "instances": list(self.cal.instances), "code": self.code,
                       "cpu": self.cpu}.items():
            tr.set_user_attr(key, v)
        if "revalidates" in tr.user_attrs:
            delta = value - tr.user_attrs["reference"]
            same_cpu = tr.user_attrs.get("reference_cpu") == self.cpu
            tr.set_user_attr("delta", delta)
            tr.set_user_attr("agrees", delta == 0.0 if same_cpu else abs(delta) <= REVALIDATE_ATOL)
        tr.set_user_attr("per_instance", {str(k): calibration_error(*m) for k, m in per.items()})
        tr.set_user_attr("finetune", np.mean([m[0] for m in per.values()], 0).tolist())
        tr.set_user_attr("v2", np.mean([m[1] for m in per.values()], 0).tolist())
        self.study.tell(tr, value)
        self.bar.update(1)


def _any_complete(study) -> bool:
    import optuna

    return any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def default_runs() -> str:
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
        outcomes = execute(flat, cal.runs_dir or default_runs(), cal.executor, cal.jobs, cal.address, progress=cal.progress)
        for name, cs in cfgs.items():
            squares = [overall(np.asarray(m)) * 100 for m in matrices(cs, outcomes)]
            out.setdefault(name, {"paper": PAPER_SCORES[name]})[side] = mean_sd(squares)
    data["variants"] = out
    return out
