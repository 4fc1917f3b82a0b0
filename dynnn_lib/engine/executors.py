"""The one way to run many runs: a local process pool (default; one process when jobs=1) or Ray tasks
(``pip install 'dynnn[ray]'``). :func:`execute` is used by :func:`run_many` (and so by run_seeds, the notebooks'
studies, the reproduction, the fidelity report, the planner and the explorer) and by the sweeps.

Both executors get the distinct trainings (one configuration per cache key: configurations that differ only in
evaluation-only fields are one training) (one configuration per cache key: points that differ only in
evaluation-only fields are one training), skip the cached ones, and call :func:`dynnn_lib.engine.runner.run` in a worker
for the rest. What makes that safe on many workers:

* **one owner per result** - keys are deduplicated before anything is submitted, and ``run()`` takes a file lock
  on the run folder, so two workers never train or write the same result (on shared storage the lock is shared);
* **thread count** - every worker pins torch to ``threads`` threads (``DYNNN_THREADS``); the count is part of
  the cache key, so the driver computes keys with the same count and each task checks that its key matches the
  driver's (different code, data or thread count on a worker is an error, not a silent second result);
* **a worker that dies** (killed, out of memory, node lost) - Ray retries the task (``max_retries``); the local
  pool is rebuilt and the unfinished runs resubmitted. The retried ``run()`` resumes from the run's
  ``checkpoint.pt`` (written after every task) when the runs folder is shared with the worker that died;
* **a run that fails** (an exception in training, a missing dataset) is not retried; the other runs continue, the
  progress bar counts it, and the command that asked for the runs says its error once when it ends (run_many
  raises it, a sweep lists it with its point, the planner and the schedules name the first).

Without shared storage (Ray workers on other machines with their own disks) the runs train in the workers' local
runs folders (same path), the result comes back to the driver over Ray and the driver writes ``result.json``
into its own runs folder, so the sweep's report and a re-run see it as cached; checkpoints, outputs and weights
stay on the worker's disk, and a retried run on another node starts again from task 0.
"""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from dynnn_lib.core.config import RunConfig, from_dict
from dynnn_lib.core.errors import ConfigError, DynnnError

if TYPE_CHECKING:
    from dynnn_lib.engine.results import RunResult

EXECUTORS = ("local", "ray")


@dataclass
class Outcome:
    key: str
    status: str                      # cached | done | failed
    result: Any = None               # RunResult (None when failed)
    error: str | None = None
    attempts: int = 0
    exception: BaseException | None = None  # the run's own error (run_many raises it)
    trained: int = 0                 # tasks this run trained itself (the others came from shared prefixes)
    trained_s: float = 0.0           # their training and evaluation seconds (what the work itself cost)


def run_task(cfg_dict: dict, runs_dir: str, key: str, threads: int, plugins: Sequence[str] = (),
             stop_after_task: int | None = None) -> dict:
    """What a worker runs (a local process or a Ray task): the run's result payload (``RunResult.to_payload``).
    `plugins`: modules that register the run's method (imported first). With `stop_after_task`, the run trains
    up to that task only (its shared prefix: the schedule tree) and returns ``{"prefix": t, "trained": tasks}``."""
    import importlib

    from dynnn_lib.engine.runner import run, trained_seconds

    for module in plugins:
        importlib.import_module(module)
    os.environ["DYNNN_THREADS"] = str(threads)
    cfg = from_dict(cfg_dict)
    mine = cfg.key()
    if mine != key:
        raise ConfigError(f"the worker computes key {mine} for this run, the driver {key}: the worker has other "
                          f"code, data or thread count (DYNNN_THREADS={threads}); install the same dynnn version there")
    res = run(cfg, runs_dir, stop_after_task=stop_after_task)
    if stop_after_task is not None and res.status == "interrupted":
        return {"prefix": stop_after_task, "trained": stop_after_task + 1 - res.timings.get("resumed_from", 0),
                "trained_s": trained_seconds(res.timings)}
    if res.status != "complete":
        raise DynnnError(f"run ended with status {res.status}: {res.error}")
    return res.to_payload()


def _error_text(e: BaseException) -> str:
    cause = getattr(e, "cause", None)  # ray.exceptions.RayTaskError wraps the task's exception
    if isinstance(cause, BaseException):
        e = cause
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


class Progress:
    """One bar over the sweep's distinct trainings with done / cached / failed / running counts. A failure is
    counted, never printed here: the caller says each error once when the command ends (printed here as well, a
    failed run's error came out twice)."""

    def __init__(self, total: int, enabled: bool, desc: str = "runs"):
        from tqdm.auto import tqdm

        self.counts = {"done": 0, "cached": 0, "failed": 0, "running": 0, "queued": 0}
        self.bar = tqdm(total=total, desc=desc, unit="run", disable=not enabled)

    def finish(self, o: Outcome) -> None:
        self.counts[o.status] += 1
        self.bar.update(1)
        self.show()

    def pending(self, running: int, queued: int) -> None:
        self.counts["running"], self.counts["queued"] = running, queued
        self.show()

    def show(self) -> None:
        self.bar.set_postfix({k: v for k, v in self.counts.items()}, refresh=True)

    def close(self) -> None:
        self.bar.close()


def execute(configs: Sequence[RunConfig], runs_dir: str | Path, executor: str = "local", jobs: int = 2,
            address: str | None = None, threads: int = 1, progress: bool = True, max_retries: int = 3,
            desc: str = "runs",
            stop_after: Mapping[str, int] | None = None, pool=None) -> dict[str, Outcome]:
    """Train every configuration not cached yet; key -> Outcome. `configs` have distinct keys (computed with
    DYNNN_THREADS = `threads`). `stop_after` (key -> task): train those runs up to that task only (their shared
    prefix; the Outcome's result is then None). `pool`: a local process pool to reuse (train_tree's waves share
    one, so workers start once)."""
    from dynnn_lib.engine.cache import cached_result

    if executor not in EXECUTORS:
        raise ConfigError(f"--executor {executor!r} is not valid; choose one of: {', '.join(EXECUTORS)}")
    if executor == "local" and address:
        raise ConfigError("--address needs --executor ray (the local executor runs on this machine)")
    runs_dir = Path(runs_dir)
    out: dict[str, Outcome] = {}
    todo: list[tuple[str, RunConfig]] = []
    bar = Progress(len(configs), progress, desc)
    try:
        for cfg in configs:
            key = cfg.key()
            try:
                hit = cached_result(cfg, runs_dir)
            except DynnnError as e:
                out[key] = Outcome(key, "failed", error=_error_text(e), exception=e)
                bar.finish(out[key])
                continue
            if hit is not None:
                out[key] = Outcome(key, "cached", hit)
                bar.finish(out[key])
            else:
                todo.append((key, cfg))
        if todo:
            plugins = sorted({m for _, cfg in todo for m in plugin_modules(cfg)})
            if "__main__" in plugins:
                if executor == "ray":
                    raise ConfigError("a method or data source defined in this notebook/script cannot run on Ray "
                                      "workers; put it in a module and pass --import MODULE")
                jobs = 1  # the local executor runs it in this process
            plugins = [m for m in plugins if m != "__main__"]
            _warm_pretrained_cache([cfg for _, cfg in todo])  # once here, not once per worker
            run_all = _run_local if executor == "local" else _run_ray
            stops = dict(stop_after or {})
            extra = {"pool": pool} if executor == "local" else {}
            run_all([(key, cfg, stops.get(key)) for key, cfg in todo], runs_dir, jobs, address, threads, max_retries,
                    out, bar, plugins, **extra)
    finally:
        bar.close()
    return out


@dataclass
class TreeStats:
    """What training the runs as a tree cost: task trainings done, what independent runs would have done, and
    the wall time of each wave."""

    runs: int = 0
    trained_tasks: int = 0         # every task training done (task 0s included), counted by the runs themselves
    planned_tasks: int = 0         # what the plan expected (TreePlan.tree_tasks): equal unless a job failed
    trained_s: float = 0.0         # the seconds those task trainings took inside the runs (training + evaluation)
    jobs: int = 1
    independent_tasks: int = 0     # the same runs trained independently (sharing only task 0, as before)
    waves: list[dict] = field(default_factory=list)  # per wave: task, jobs, trained, wall_s
    wall_s: float = 0.0
    failed: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.independent_tasks / self.trained_tasks if self.trained_tasks else float("nan")

    @property
    def overhead(self) -> float:
        """Wall time over what the trainings cost spread on the jobs (1.0: no time lost to the sharing)."""
        return self.wall_s * self.jobs / self.trained_s if self.trained_s else float("nan")

    def to_dict(self) -> dict:
        return {"runs": self.runs, "trained_tasks": self.trained_tasks, "planned_tasks": self.planned_tasks,
                "independent_tasks": self.independent_tasks, "trained_s": self.trained_s, "jobs": self.jobs,
                "overhead": self.overhead,
                "ratio": self.ratio, "wall_s": self.wall_s, "waves": self.waves, "failed": self.failed}


def stream_length(cfg: RunConfig) -> int:
    """The number of tasks of cfg's stream, from its source's cheap count (a generated one's spec, a real one's
    folder names; nothing is decoded); 0 when it cannot be read here (the run reports why)."""
    from dynnn_lib.data import stream_length as length

    try:
        return length(cfg.data)
    except DynnnError:
        return 0


def _cached(cfg: RunConfig, runs_dir: Path) -> RunResult | None:
    from dynnn_lib.engine.cache import cached_result

    try:
        return cached_result(cfg, runs_dir)
    except DynnnError:  # a damaged result: execute reports it
        return None


@dataclass
class TreePlan:
    """The runs still to train, their streams' lengths and prefix keys, and the task trainings they need as a tree
    (every state that is not stored, once) and as independent runs sharing task 0 (as before prefixes)."""

    distinct: dict[str, RunConfig]
    cached: dict[str, RunResult]
    pending: dict[str, RunConfig]
    n_of: dict[str, int]
    chains: dict[str, list[str]]
    tree_tasks: int
    independent_tasks: int

    @classmethod
    def make(cls, configs: Sequence[RunConfig], runs_dir: Path) -> "TreePlan":
        from dynnn_lib.engine.cache import has_prefix

        distinct = {cfg.key(): cfg for cfg in configs}
        hits = {k: _cached(c, runs_dir) for k, c in distinct.items()}
        cached = {k: res for k, res in hits.items() if res is not None}
        pending = {k: c for k, c in distinct.items() if k not in cached}
        lengths: dict[str, int] = {}
        n_of: dict[str, int] = {}
        for key, cfg in pending.items():
            data_id = json.dumps(cfg.to_dict()["data"], sort_keys=True)
            if data_id not in lengths:
                lengths[data_id] = stream_length(cfg)
            n_of[key] = lengths[data_id]
        chains = {k: c.prefix_keys(n_of[k]) for k, c in pending.items()}  # n = 0 (no stream): the run alone
        nodes = {(t, chains[k][t]): c for k, c in pending.items() for t in range(max(n_of[k] - 1, 0))}
        bases = {(0, c.base_key()): c for k, c in pending.items() if n_of[k]}
        return cls(distinct, cached, pending, n_of, chains,
                   tree_tasks=len(pending) + sum(not has_prefix(c, runs_dir, t, key) for (t, key), c in nodes.items()),
                   independent_tasks=sum(max(n_of[k] - 1, 0) for k in pending)
                   + sum(not has_prefix(c, runs_dir, 0, b) for (_, b), c in bases.items()))


def train_tree(configs: Sequence[RunConfig], runs_dir: str | Path | None = None, executor: str = "local",
               jobs: int = 2, address: str | None = None, threads: int | None = None, progress: bool = True,
               outcomes: dict[str, Outcome] | None = None) -> TreeStats:
    """Train `configs` (distinct keys) so that every shared prefix is trained once: with several jobs, wave t
    trains each state after task t that two or more pending runs pass through (one job each, from the stored
    state after task t-1), then the runs finish from their longest prefix; one job runs them one after another
    (each starts from what the earlier ones stored). Cached runs are skipped; `outcomes` (key -> Outcome) receives
    every run's outcome, cached ones included; a failed prefix job is reported in ``failed`` and its runs train on
    their own."""
    from dynnn_lib.core.fingerprint import threads as default_threads
    from dynnn_lib.engine.cache import default_runs_dir, sharing

    runs_dir = Path(runs_dir or default_runs_dir())
    threads = threads or default_threads()
    plan = TreePlan.make(configs, runs_dir)
    stats = TreeStats(runs=len(plan.distinct), planned_tasks=plan.tree_tasks, independent_tasks=plan.independent_tasks,
                      jobs=max(jobs, 1))
    if outcomes is not None:
        outcomes.update({k: Outcome(k, "cached", res) for k, res in plan.cached.items()})
    start = time.perf_counter()
    depth = max(plan.n_of.values(), default=0) - 1 if sharing() == "all" else (1 if sharing() == "task0" else 0)
    if executor == "local" and jobs <= 1:
        depth = 0  # one process: each run starts from the prefixes the earlier ones stored
    pool = None
    if executor == "local" and jobs > 1 and depth > 0:  # one pool for every wave: workers start once
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"))
    try:
        return _waves(plan, stats, start, depth, runs_dir, executor, jobs, address, threads, progress, outcomes,
                      pool)
    finally:
        if pool is not None:
            pool.shutdown()


def _waves(plan, stats, start, depth, runs_dir, executor, jobs, address, threads, progress, outcomes, pool):
    from dynnn_lib.engine.cache import has_prefix

    pending, n_of, chains = plan.pending, plan.n_of, plan.chains
    for t in range(depth):
        through: dict[str, list[str]] = defaultdict(list)
        for k in pending:
            if t < n_of[k] - 1:
                through[chains[k][t]].append(k)
        stops = {}
        for node, keys in through.items():
            rep = pending[keys[0]]
            if len(keys) >= 2 and not has_prefix(rep, runs_dir, t, node):
                stops[keys[0]] = t
        if not stops:
            continue
        wave = time.perf_counter()
        out = execute([pending[k] for k in stops], runs_dir, executor, jobs, address, threads, progress,
                      desc=f"prefixes, task {t}", stop_after=stops, pool=pool)
        _record(stats, t, out, wave, f"task {t} prefix of")
    if pending:
        wave = time.perf_counter()
        order = sorted(pending, key=lambda k: chains[k])  # neighbours share the longest prefixes
        out = execute([pending[k] for k in order], runs_dir, executor, jobs, address, threads, progress, desc="runs",
                      pool=pool)
        if outcomes is not None:
            outcomes.update(out)
        _record(stats, "runs", out, wave, "run")
    stats.wall_s = time.perf_counter() - start
    return stats


def _record(stats: TreeStats, task: int | str, out: dict[str, Outcome], started: float, what: str) -> None:
    """One wave's jobs, task trainings, their seconds, failures and wall time into `stats`."""
    trained = sum(o.trained for o in out.values())
    stats.trained_tasks += trained
    stats.trained_s += sum(o.trained_s for o in out.values())
    stats.failed += [f"{what} {k}: {o.error}" for k, o in out.items() if o.status == "failed"]
    stats.waves.append({"task": task, "jobs": len(out), "trained": trained, "wall_s": time.perf_counter() - started})


def run_many(configs: Sequence[RunConfig], runs_dir: str | Path | None = None, jobs: int = 1,
             progress: bool = True) -> list[RunResult]:
    """Run several configurations, `jobs` processes at a time (the local executor), results in input order.

    Configurations that train the same run (equal keys: they differ only in evaluation-only fields such as the
    head rule) are trained once; cache hits are read, not retrained. A failed run raises its own error once the
    others have finished."""
    from dynnn_lib.core.fingerprint import threads
    from dynnn_lib.engine.cache import default_runs_dir

    runs_dir = Path(runs_dir or default_runs_dir())
    distinct = {}
    for cfg in configs:
        distinct.setdefault(cfg.key(), cfg)
    outcomes: dict[str, Outcome] = {}
    train_tree(list(distinct.values()), runs_dir, "local", jobs=max(jobs, 1), threads=threads(), progress=progress,
               outcomes=outcomes)
    _raise_failures([o for o in outcomes.values() if o.status == "failed"], distinct)
    out = []
    for cfg in configs:
        res = outcomes[cfg.key()].result
        out.append(res.with_rule(cfg.head_rule) if res.matrices else res)
    return out


def _raise_failures(failed: Sequence[Outcome], configs: Mapping[str, RunConfig]) -> None:
    """The failed runs' errors, each said once: the run's own error when they share one (a missing class fails
    every seed alike), else one line naming each distinct error with the first seed and key it failed on."""
    if not failed:
        return
    first = failed[0].exception
    if len({o.error for o in failed}) == 1:
        raise first if isinstance(first, DynnnError) else DynnnError(f"run {failed[0].key} failed: {failed[0].error}")
    seen: dict[str, Outcome] = {}
    for o in failed:
        seen.setdefault(o.error or "", o)
    raise DynnnError(f"{len(failed)} runs failed: " + "; ".join(
        f"{configs[o.key].method} seed {configs[o.key].seed} (key {o.key}): {error}" for error, o in seen.items()))


def run_seeds(cfg: RunConfig, seeds: Iterable[int], runs_dir: str | Path | None = None, jobs: int = 1,
              progress: bool = True) -> list[RunResult]:
    return run_many([cfg.replace(seed=s) for s in seeds], runs_dir, jobs, progress)


def _warm_pretrained_cache(configs: Sequence[RunConfig]) -> None:
    """The offline-pretrained convs each configuration needs, made once here before any worker starts."""
    from dynnn_lib.model.network import DynamicNet
    from dynnn_lib.model.pretrain import pretrained_state

    seen = set()
    for cfg in configs:
        spec = (cfg.pretrained, cfg.backbone, cfg.gn_groups, cfg.data.image_size, cfg.data.cache_dir)
        if cfg.pretrained and spec not in seen:
            seen.add(spec)
            pretrained_state(cfg, lambda n, c=cfg: DynamicNet(c, n))


def plugin_modules(cfg: RunConfig) -> set[str]:
    """The modules a worker must import for cfg's method and data source (none for the built-in ones; '__main__'
    for a class defined in a notebook or script, which no worker can import)."""
    classes = [getattr(cfg, "method_class", None), getattr(getattr(cfg, "data", None), "source_class", None)]
    modules = {c().__module__ for c in classes if c is not None}
    return {m for m in modules if not m.startswith("dynnn_lib.")}


def _done(key: str, payload: dict, runs_dir: Path) -> Outcome:
    from dynnn_lib.engine.results import RunResult

    if "prefix" in payload:  # a run trained up to a task: its prefix is stored, there is no result yet
        return Outcome(key, "done", None, trained=payload["trained"], trained_s=payload["trained_s"])

    path = runs_dir / key / "result.json"
    if not path.exists():  # the worker's runs folder is not shared with the driver: the driver keeps the result
        from dynnn_lib.core.store import exclusive_lock, write_json_checked

        with exclusive_lock(path.parent / ".lock"):
            if not path.exists():
                write_json_checked(path, payload)
    res = RunResult.from_payload(payload, path)
    res.cached = False
    return Outcome(key, "done", res, trained=len(res.logs) - res.timings.get("resumed_from", 0),
                   trained_s=res.timings.get("trained_s", 0.0))


# ------------------------------------------------------------------ local processes
def _run_local(todo, runs_dir, jobs, address, threads, max_retries, out, bar, plugins, pool=None) -> None:
    import contextlib
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    if jobs <= 1:  # one at a time in this process (no worker start-up); a failed run is reported, the rest go on
        for i, (key, cfg, stop) in enumerate(todo):
            bar.pending(1, len(todo) - i - 1)
            try:
                out[key] = _done(key, run_task(cfg.to_dict(), str(runs_dir), key, threads, plugins, stop), runs_dir)
            except Exception as e:  # noqa: BLE001
                out[key] = Outcome(key, "failed", error=_error_text(e), exception=e)
            out[key].attempts = 1
            bar.finish(out[key])
        bar.pending(0, 0)
        return
    attempts = {key: 0 for key, *_ in todo}
    remaining = list(todo)
    while remaining:
        reuse = pool is not None and not getattr(pool, "_broken", False)  # a dead worker breaks it: start anew
        with (contextlib.nullcontext(pool) if reuse else
              ProcessPoolExecutor(max_workers=min(jobs, len(remaining)), mp_context=mp.get_context("spawn"))) as workers:
            futures = {}
            for key, cfg, stop in remaining:
                attempts[key] += 1
                futures[workers.submit(run_task, cfg.to_dict(), str(runs_dir), key, threads, plugins, stop)] = (key, cfg, stop)
            retry = []
            pending = set(futures)
            while pending:
                bar.pending(min(jobs, len(pending)), max(0, len(pending) - jobs))
                finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for fut in finished:
                    key, cfg, stop = futures[fut]
                    try:
                        out[key] = _done(key, fut.result(), runs_dir)
                    except BrokenProcessPool:
                        if attempts[key] <= max_retries:
                            retry.append((key, cfg, stop))
                            continue
                        out[key] = Outcome(key, "failed", error=f"worker process died {attempts[key]} times")
                    except Exception as e:  # noqa: BLE001 - a failed run is reported, the others continue
                        out[key] = Outcome(key, "failed", error=_error_text(e), exception=e)
                    out[key].attempts = attempts[key]
                    bar.finish(out[key])
        remaining = retry
    bar.pending(0, 0)


# ------------------------------------------------------------------ Ray
def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'dynnn[ray]' (or pip install 'ray[default]')") from None
    return ray


def _run_ray(todo, runs_dir, jobs, address, threads, max_retries, out, bar, plugins) -> None:
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        if address:
            kwargs["address"] = address
        else:  # a local Ray instance with `jobs` parallel runs
            kwargs.update(num_cpus=jobs * threads, include_dashboard=False)
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConfigError(f"could not connect to Ray at {address or 'a new local instance'}: "
                              f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < threads:
            raise ConfigError(f"the Ray cluster has {cpus} CPUs; a run needs {threads} (--threads)")
        slots = max(1, cpus // threads)
        task = ray.remote(num_cpus=threads, max_retries=max_retries, retry_exceptions=False)(run_task)
        refs = {task.remote(cfg.to_dict(), str(runs_dir), key, threads, plugins, stop): key for key, cfg, stop in todo}
        while refs:
            bar.pending(min(slots, len(refs)), max(0, len(refs) - slots))
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=1.0)
            for ref in ready:
                key = refs.pop(ref)
                try:
                    out[key] = _done(key, ray.get(ref), runs_dir)
                except Exception as e:  # noqa: BLE001 - RayTaskError (the run raised), WorkerCrashedError (retries spent)
                    out[key] = Outcome(key, "failed", error=_error_text(e))
                bar.finish(out[key])
        bar.pending(0, 0)
    finally:
        if started_here:
            ray.shutdown()


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True

