"""Run a configuration: stream -> model -> method -> accuracy matrix, checkpointed and cached.

Layout of a run folder ``<runs_dir>/<config key>/`` (the key: training fields, code and data fingerprints,
thread count; see config.py and fingerprint.py):

* ``config.json``    - the configuration (plain JSON);
* ``checkpoint.pt``  - after every finished task: weights, outputs, snapshots and logs so far;
  a killed run continues from the first unfinished task and ends bit-identical on CPU;
* ``result.json``    - written once, atomically, with a sha256 checksum (schema ``dynnn.result/1``):
  ``status`` (complete | failed), ``matrix`` (the configuration's head rule) and ``matrices`` (every head
  rule; rows of fractions, ``null`` for rows never reached), ``routing`` (image -> responsible head),
  ``task_heads``, ``task_names``, ``logs``, ``timings``, ``seed``, ``provenance`` (commit, dirty tree, code
  fingerprint, threads), ``versions``, ``error``;
* ``outputs.pt``     - the test-set outputs every head rule is scored from (evaluation.py);
* ``snapshots.pt``   - after each task, the weights that changed (a frozen trunk is stored once);
* ``model.pt``       - final weights (state dict) and the number of heads.

Task 0 is trained the same way by every method, so it is trained once per ``base_key`` and shared
(``<runs_dir>/_base/<base key>.pt``). An identical configuration is a cache hit; two processes running the
same one serialise on a file lock.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from . import __version__
from .config import RunConfig, from_dict
from .data.stream import Stream, load_stream
from .errors import ConfigError, DynnnError, ResultCorrupt, TrainingDiverged
from .evaluation import Evaluator, Outputs
from .fingerprint import code_fingerprint, git_state, pinned_threads
from .methods import History, train_task
from .metrics import summarize
from .routing import HEAD_RULES
from .model import build_model, model_size_bytes
from .store import atomic_torch_save, exclusive_lock, read_json_checked, write_json_checked


def default_runs_dir() -> Path:
    return Path(os.environ.get("DYNNN_RUNS", "runs"))


@dataclass
class RunResult:
    config: RunConfig
    matrix: np.ndarray                 # N x N fractions; NaN rows for tasks never reached
    task_names: list[str]
    logs: list[dict]
    status: str = "complete"
    error: str | None = None
    timings: dict = field(default_factory=dict)
    model_bytes: int = 0
    path: Path | None = None
    cached: bool = False
    matrices: dict[str, np.ndarray] = field(default_factory=dict)  # every head rule
    routing: np.ndarray | None = None                              # R[i, j]: image of task j -> its head
    task_heads: list[int] = field(default_factory=list)            # head responsible for each task (last row)
    provenance: dict = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        return summarize(self.matrix)

    @property
    def routing_accuracy(self) -> list[float]:
        """Per task, after the whole stream: fraction of its test images routed to the head responsible for it."""
        return [] if self.routing is None else self.routing[-1].tolist()

    def with_rule(self, rule: str) -> "RunResult":
        """The same run scored under another head rule (no training; see evaluation.Outputs.score)."""
        import dataclasses

        if rule not in self.matrices:
            raise ConfigError(f"head rule {rule!r} is not stored in this result; rules: {', '.join(self.matrices)}")
        return dataclasses.replace(self, matrix=self.matrices[rule], config=self.config.replace(head_combine=rule))

    @property
    def expanded_at(self) -> list[int]:
        return [log["task"] for log in self.logs if log["action"] == "expand"]

    def to_payload(self) -> dict:
        return {
            "status": self.status, "error": self.error, "config": self.config.to_dict(), "key": self.config.key(),
            "seed": self.config.seed, "task_names": self.task_names, "logs": self.logs, "timings": self.timings,
            "model_bytes": self.model_bytes, "matrix": _rows(self.matrix),
            "matrices": {k: _rows(m) for k, m in self.matrices.items()},
            "routing": None if self.routing is None else _rows(self.routing), "task_heads": self.task_heads,
            "provenance": self.provenance,
            "versions": {"dynnn": __version__, "python": platform.python_version(), "torch": torch.__version__,
                         "numpy": np.__version__},
        }

    @classmethod
    def from_payload(cls, body: dict, path: Path | None = None) -> "RunResult":
        try:
            routing = body.get("routing")
            return cls(config=from_dict(body["config"]), matrix=_array(body["matrix"]), task_names=list(body["task_names"]),
                       logs=list(body["logs"]), status=body["status"], error=body.get("error"),
                       timings=dict(body.get("timings", {})), model_bytes=int(body.get("model_bytes", 0)),
                       path=path, cached=True, matrices={k: _array(m) for k, m in body.get("matrices", {}).items()},
                       routing=None if routing is None else _array(routing), task_heads=list(body.get("task_heads", [])),
                       provenance=dict(body.get("provenance", {})))
        except (KeyError, TypeError, ValueError, DynnnError) as e:
            raise ResultCorrupt(f"{path or 'result'} does not match the result schema ({e}); delete it to recompute") from None


def _rows(matrix: np.ndarray) -> list:
    return [[None if np.isnan(v) else float(v) for v in row] for row in matrix]


def _array(rows: list) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


def load_result(path: str | Path) -> RunResult:
    """Read and verify a result.json."""
    path = Path(path)
    return RunResult.from_payload(read_json_checked(path), path)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but no CUDA GPU is visible; use device='cpu' or 'auto'")
    return torch.device(name)


def check_against_stream(cfg: RunConfig, stream: Stream) -> None:
    n = len(stream)
    bad = [t for t in cfg.expand_at if t >= n]
    if bad:
        raise ConfigError(f"expand_at={list(cfg.expand_at)} is out of range: the stream has {n} tasks (0..{n - 1})")


def cached_result(cfg: RunConfig, runs_dir: str | Path | None = None) -> RunResult | None:
    """The stored complete result of `cfg` scored under cfg.head_combine, or None. A corrupt file raises
    ResultCorrupt. Evaluation-only fields never retrain: the stored run is re-scored."""
    path = Path(runs_dir or default_runs_dir()) / cfg.key() / "result.json"
    if not path.exists():
        return None
    res = load_result(path)
    if res.status != "complete":
        return None
    return res.with_rule(cfg.head_combine) if res.matrices else res


def load_outputs(result: RunResult) -> Outputs:
    """The stored test-set outputs of a finished run (score them under any head rule: Outputs.score)."""
    if result.path is None:
        raise ConfigError("this result has no run folder; load it with load_result(path)")
    path = result.path.parent / "outputs.pt"
    try:
        return Outputs.from_state(torch.load(path, weights_only=False))
    except FileNotFoundError:
        raise ResultCorrupt(f"{path} is missing; delete the run folder {path.parent} to recompute") from None


def run(cfg: RunConfig, runs_dir: str | Path | None = None, progress: bool = False, stream: Stream | None = None,
        stop_after_task: int | None = None) -> RunResult:
    """Run `cfg` (or return its cached result). `stop_after_task` exists for tests of resuming."""
    if not isinstance(cfg, RunConfig):
        raise ConfigError(f"run() takes a RunConfig, got {type(cfg).__name__}; build one with RunConfig(...) or from_dict()")
    run_dir = Path(runs_dir or default_runs_dir()) / cfg.key()
    hit = cached_result(cfg, runs_dir)
    if hit is not None:
        return hit
    with exclusive_lock(run_dir / ".lock"):
        hit = cached_result(cfg, runs_dir)  # another process may have finished it while we waited
        if hit is not None:
            return hit
        return _run_locked(cfg, run_dir, progress, stream, stop_after_task)


def _run_locked(cfg: RunConfig, run_dir: Path, progress: bool, stream: Stream | None,
                stop_after_task: int | None) -> RunResult:
    with pinned_threads() as threads:
        return _train(cfg, run_dir, progress, stream, stop_after_task, threads)


def _train(cfg: RunConfig, run_dir: Path, progress: bool, stream: Stream | None, stop_after_task: int | None,
           threads: int) -> RunResult:
    from tqdm.auto import tqdm

    device = resolve_device(cfg.device)
    stream = stream or load_stream(cfg.data)
    check_against_stream(cfg, stream)
    n = len(stream)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, sort_keys=True))

    model = build_model(cfg, stream.n_classes).to(device)
    evaluator = Evaluator([(t.test_x, t.test_y) for t in stream.tasks], device)
    state = (_load_state(run_dir / "checkpoint.pt", "key", cfg.key(), "checkpoint", "starting the run from task 0")
             or _load_state(_base_path(cfg, run_dir), "base_key", cfg.base_key(), "shared task-0 state",
                            "training task 0"))
    logs, timings, snapshots = [], {"train_s": [], "eval_s": []}, []
    if state is not None:
        model.load_saved(state)
        model.to(device)
        evaluator.outputs = Outputs.from_state(state["outputs"])
        logs, timings, snapshots = state["logs"], state["timings"], state["snapshots"]
        if "base_key" in state:
            timings["task0_shared"] = True
    start_task = len(logs)
    outputs = evaluator.outputs
    previous = {k: v.clone() for k, v in model.state_dict().items()} if snapshots else {}

    result = RunResult(config=cfg, matrix=np.full((n, n), np.nan), task_names=stream.task_names, logs=logs,
                       timings=timings, path=run_dir / "result.json",
                       provenance={**git_state(), "code": code_fingerprint(), "threads": threads})
    bar = tqdm(range(start_task, n), desc=f"{cfg.method} seed {cfg.seed}", unit="task", disable=not progress,
               initial=start_task, total=n)
    try:
        for t in bar:
            task = stream.tasks[t]
            heads_so_far = outputs.rows[-1]["task_heads"] if outputs.rows else []
            log = train_task(model, task, cfg, device, progress=progress,
                             history=History(domains=outputs.domains[:t], task_heads=heads_so_far))
            t0 = time.perf_counter()
            evaluator.add_domain(model, task.train_x)
            evaluator.add_row(model, heads_so_far + [log.head], changed_heads=[log.head],
                              trunk_changed=log.action in ("full", "finetune"))
            timings["train_s"].append(log.train_s)
            timings["eval_s"].append(time.perf_counter() - t0)
            logs.append(log.to_dict())
            current = {k: v.clone() for k, v in model.state_dict().items()}
            snapshots.append({"n_heads": len(model.heads), "state": {
                k: v for k, v in current.items() if k not in previous or not torch.equal(v, previous[k])}})
            previous = current
            state = {"key": cfg.key(), "completed": t + 1, "n_heads": len(model.heads), "model": current,
                     "outputs": outputs.state(), "snapshots": snapshots, "logs": logs, "timings": timings}
            atomic_torch_save(state, run_dir / "checkpoint.pt")
            if t == 0:
                _save_base(cfg, run_dir, state)
            if progress:
                row = outputs.score(cfg.head_combine)[t]
                bar.set_postfix(acc=f"{np.nanmean(row[:t + 1]):.3f}", heads=len(model.heads))
            if stop_after_task is not None and t >= stop_after_task and t < n - 1:
                result.status = "interrupted"
                return result
    except TrainingDiverged as e:
        _finish(result, outputs, cfg)
        result.status, result.error = "failed", str(e)
        write_json_checked(run_dir / "result.json", result.to_payload())
        raise
    finally:
        bar.close()
    timings["total_s"] = float(sum(timings["train_s"]) + sum(timings["eval_s"]))
    result.model_bytes = model_size_bytes(model)
    _finish(result, outputs, cfg)
    atomic_torch_save(outputs.state(), run_dir / "outputs.pt")
    atomic_torch_save(snapshots, run_dir / "snapshots.pt")
    atomic_torch_save({"n_heads": len(model.heads), "model": model.state_dict()}, run_dir / "model.pt")
    write_json_checked(run_dir / "result.json", result.to_payload())
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    return result


def _finish(result: RunResult, outputs: Outputs, cfg: RunConfig) -> None:
    """Score the stored outputs under every head rule (milliseconds)."""
    result.matrices = {rule: outputs.score(rule) for rule in HEAD_RULES}
    result.matrix = result.matrices[cfg.head_combine]
    result.routing = outputs.routing()
    result.task_heads = list(outputs.rows[-1]["task_heads"]) if outputs.rows else []


def _base_path(cfg: RunConfig, run_dir: Path) -> Path:
    return run_dir.parent / "_base" / f"{cfg.base_key()}.pt"


def _save_base(cfg: RunConfig, run_dir: Path, state: dict) -> None:
    path = _base_path(cfg, run_dir)
    if not path.exists():
        atomic_torch_save({**state, "base_key": cfg.base_key()}, path)


def _load_state(path: Path, field: str, expected: str, what: str, otherwise: str) -> dict | None:
    """A saved state (a run's checkpoint, or a shared task 0) whose `field` matches, else None; never resume
    from a damaged or foreign file."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, weights_only=False)
        if state.get(field) != expected:
            raise ValueError("it belongs to another configuration")
        return state
    except Exception as e:
        warnings.warn(f"ignoring {what} {path} ({e}); {otherwise}", stacklevel=2)
        return None


# ------------------------------------------------------------------ many runs
def _worker(cfg_dict: dict, runs_dir: str) -> dict:
    res = run(from_dict(cfg_dict), runs_dir)
    return res.to_payload()


def run_many(configs: Sequence[RunConfig], runs_dir: str | Path | None = None, jobs: int = 1,
             progress: bool = True) -> list[RunResult]:
    """Run several configurations, `jobs` processes at a time, results in input order.

    Configurations that train the same run (equal keys: they differ only in evaluation-only fields such as
    the head rule) are trained once; cache hits are read, not retrained.
    """
    from tqdm.auto import tqdm

    runs_dir = Path(runs_dir or default_runs_dir())
    results: list[RunResult | None] = [None] * len(configs)
    todo: dict[str, list[int]] = {}
    for i, cfg in enumerate(configs):
        hit = cached_result(cfg, runs_dir)
        if hit is not None:
            results[i] = hit
        else:
            todo.setdefault(cfg.key(), []).append(i)

    def fill(indices: list[int], res: RunResult) -> None:
        for i in indices:
            results[i] = res.with_rule(configs[i].head_combine) if res.matrices else res

    bar = tqdm(total=len(configs), initial=len(configs) - sum(map(len, todo.values())), desc="runs", unit="run",
               disable=not progress)
    try:
        _warm_pretrained_cache([configs[ix[0]] for ix in todo.values()])  # once here, not once per worker
        if jobs <= 1 or len(todo) <= 1:
            for indices in todo.values():
                fill(indices, run(configs[indices[0]], runs_dir, progress=False))
                bar.update(len(indices))
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(_worker, configs[ix[0]].to_dict(), str(runs_dir)): ix for ix in todo.values()}
                for fut in as_completed(futures):
                    indices = futures[fut]
                    res = RunResult.from_payload(fut.result(), runs_dir / configs[indices[0]].key() / "result.json")
                    res.cached = False
                    fill(indices, res)
                    bar.update(len(indices))
    finally:
        bar.close()
    return [r for r in results if r is not None]


def _warm_pretrained_cache(configs: Sequence[RunConfig]) -> None:
    from .model import DynamicNet
    from .pretrain import pretrained_state

    seen = set()
    for cfg in configs:
        spec = (cfg.pretrained, cfg.backbone, cfg.gn_groups, cfg.data.image_size, cfg.data.cache_dir)
        if cfg.pretrained and spec not in seen:
            seen.add(spec)
            pretrained_state(cfg, lambda n, c=cfg: DynamicNet(c, n))


def run_seeds(cfg: RunConfig, seeds: Iterable[int], runs_dir: str | Path | None = None, jobs: int = 1,
              progress: bool = True) -> list[RunResult]:
    return run_many([cfg.replace(seed=s) for s in seeds], runs_dir, jobs, progress)
