"""Run a configuration: stream -> model -> method -> accuracy matrix, checkpointed and cached.

Layout of a run folder ``<runs_dir>/<config key>/``:

* ``config.json``   - the configuration (plain JSON);
* ``checkpoint.pt`` - after every finished task: weights, head count, matrix rows and logs so far;
  a killed run continues from the first unfinished task and ends bit-identical on CPU;
* ``result.json``   - written once, atomically, with a sha256 checksum (schema ``dynnn.result/1``):
  ``status`` (complete | failed), ``matrix`` (rows of fractions, ``null`` for rows never reached),
  ``task_names``, ``logs`` (what happened on each task), ``timings``, ``seed``, ``versions``, ``error``;
* ``model.pt``      - final weights (state dict) and the number of heads.

An identical configuration is a cache hit; two processes running the same one serialise on a file lock.
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
from .methods import accuracy, train_task
from .metrics import summarize
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

    @property
    def metrics(self) -> dict[str, float]:
        return summarize(self.matrix)

    @property
    def expanded_at(self) -> list[int]:
        return [log["task"] for log in self.logs if log["action"] == "expand"]

    def to_payload(self) -> dict:
        return {
            "status": self.status, "error": self.error, "config": self.config.to_dict(), "key": self.config.key(),
            "seed": self.config.seed, "task_names": self.task_names, "logs": self.logs, "timings": self.timings,
            "model_bytes": self.model_bytes,
            "matrix": [[None if np.isnan(v) else float(v) for v in row] for row in self.matrix],
            "versions": {"dynnn": __version__, "python": platform.python_version(), "torch": torch.__version__,
                         "numpy": np.__version__},
        }

    @classmethod
    def from_payload(cls, body: dict, path: Path | None = None) -> "RunResult":
        try:
            matrix = np.array([[np.nan if v is None else v for v in row] for row in body["matrix"]], dtype=float)
            return cls(config=from_dict(body["config"]), matrix=matrix, task_names=list(body["task_names"]),
                       logs=list(body["logs"]), status=body["status"], error=body.get("error"),
                       timings=dict(body.get("timings", {})), model_bytes=int(body.get("model_bytes", 0)),
                       path=path, cached=True)
        except (KeyError, TypeError, ValueError, DynnnError) as e:
            raise ResultCorrupt(f"{path or 'result'} does not match the result schema ({e}); delete it to recompute") from None


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
    """The stored complete result of `cfg`, or None. A corrupt file raises ResultCorrupt."""
    path = Path(runs_dir or default_runs_dir()) / cfg.key() / "result.json"
    if not path.exists():
        return None
    res = load_result(path)
    return res if res.status == "complete" else None


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
    from tqdm.auto import tqdm

    device = resolve_device(cfg.device)
    stream = stream or load_stream(cfg.data)
    check_against_stream(cfg, stream)
    n = len(stream)
    (run_dir).mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, sort_keys=True))

    model = build_model(cfg, stream.n_classes).to(device)
    matrix = np.full((n, n), np.nan)
    logs: list[dict] = []
    timings: dict = {"train_s": [], "eval_s": []}
    start_task = 0
    ckpt_path = run_dir / "checkpoint.pt"
    if ckpt_path.exists():
        state = _load_checkpoint(ckpt_path, cfg)
        if state is not None:
            model.load_saved(state)
            model.to(device)
            start_task = state["completed"]
            matrix[:start_task] = np.array(state["rows"], dtype=float)
            logs, timings = state["logs"], state["timings"]

    result = RunResult(config=cfg, matrix=matrix, task_names=stream.task_names, logs=logs, timings=timings,
                       path=run_dir / "result.json")
    bar = tqdm(range(start_task, n), desc=f"{cfg.method} seed {cfg.seed}", unit="task", disable=not progress,
               initial=start_task, total=n)
    try:
        for t in bar:
            log = train_task(model, stream.tasks[t], cfg, device, progress=progress)
            t0 = time.perf_counter()
            matrix[t] = [accuracy(model, task.test_x, task.test_y, device) for task in stream.tasks]
            timings["train_s"].append(log.train_s)
            timings["eval_s"].append(time.perf_counter() - t0)
            logs.append(log.to_dict())
            bar.set_postfix(acc=f"{np.nanmean(matrix[t, :t + 1]):.3f}", heads=len(model.heads))
            atomic_torch_save({"key": cfg.key(), "completed": t + 1, "n_heads": len(model.heads),
                               "model": model.state_dict(), "rows": matrix[:t + 1].tolist(), "logs": logs,
                               "timings": timings}, ckpt_path)
            if stop_after_task is not None and t >= stop_after_task and t < n - 1:
                result.status = "interrupted"
                return result
    except TrainingDiverged as e:
        result.status, result.error = "failed", str(e)
        write_json_checked(run_dir / "result.json", result.to_payload())
        raise
    finally:
        bar.close()
    timings["total_s"] = float(sum(timings["train_s"]) + sum(timings["eval_s"]))
    result.model_bytes = model_size_bytes(model)
    atomic_torch_save({"n_heads": len(model.heads), "model": model.state_dict()}, run_dir / "model.pt")
    write_json_checked(run_dir / "result.json", result.to_payload())
    ckpt_path.unlink(missing_ok=True)
    return result


def _load_checkpoint(path: Path, cfg: RunConfig) -> dict | None:
    try:
        state = torch.load(path, weights_only=False)
        if state.get("key") != cfg.key():
            raise ValueError("it belongs to another configuration")
        return state
    except Exception as e:  # never resume from a damaged checkpoint
        warnings.warn(f"ignoring checkpoint {path} ({e}); starting the run from task 0", stacklevel=2)
        return None


# ------------------------------------------------------------------ many runs
def _worker(cfg_dict: dict, runs_dir: str, threads: int) -> dict:
    torch.set_num_threads(threads)
    res = run(from_dict(cfg_dict), runs_dir)
    return res.to_payload()


def run_many(configs: Sequence[RunConfig], runs_dir: str | Path | None = None, jobs: int = 1,
             progress: bool = True) -> list[RunResult]:
    """Run several configurations (cache hits first), `jobs` processes at a time, results in input order."""
    from tqdm.auto import tqdm

    runs_dir = Path(runs_dir or default_runs_dir())
    results: list[RunResult | None] = [None] * len(configs)
    todo = []
    for i, cfg in enumerate(configs):
        hit = cached_result(cfg, runs_dir)
        if hit is not None:
            results[i] = hit
        else:
            todo.append(i)
    bar = tqdm(total=len(configs), initial=len(configs) - len(todo), desc="runs", unit="run", disable=not progress)
    try:
        _warm_pretrained_cache([configs[i] for i in todo])  # once here, not once per worker
        if jobs <= 1 or len(todo) <= 1:
            for i in todo:
                results[i] = run(configs[i], runs_dir, progress=False)
                bar.update()
        else:
            import multiprocessing as mp

            threads = max(1, (os.cpu_count() or 1) // jobs)
            with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(_worker, configs[i].to_dict(), str(runs_dir), threads): i for i in todo}
                for fut in as_completed(futures):
                    i = futures[fut]
                    results[i] = RunResult.from_payload(fut.result(), runs_dir / configs[i].key() / "result.json")
                    results[i].cached = False
                    bar.update()
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
