"""Run a configuration: stream -> model -> method -> accuracy matrices, checkpointed and cached.

``run`` returns the cached result of a configuration or trains it (engine/train.py: the loop, from the longest prefix
another run stored) and scores the stored test-set outputs under every head rule (evaluation/routing.py). The result's
schema is in engine/results.py, run folders in engine/cache.py, checkpoints and prefixes in engine/checkpoints.py.

Run folder ``<runs_dir>/<key>/``: ``config.json``; ``key.json`` (the inputs of its key: ``dynnn why``);
``checkpoint.pt`` while it runs; ``result.json`` (engine/results.py); ``outputs.pt`` (the test-set outputs every head
rule is scored from, evaluation/outputs.py); ``snapshots.pt`` (after each task, the weights that changed);
``model.pt`` (final weights and the number of heads).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dynnn_lib.engine.cache import (cached_result, default_runs_dir, exclusive_lock, load_outputs,  # noqa: F401
                                    run_dir)
from dynnn_lib.core.config import RunConfig
from dynnn_lib.data import Stream
from dynnn_lib.core.errors import ConfigError, TrainingDiverged
from dynnn_lib.evaluation.outputs import Outputs
from dynnn_lib.core.fingerprint import cpu, git_state, pinned_threads
from dynnn_lib.model.network import model_size_bytes
from dynnn_lib.engine.results import RunResult, load_result  # noqa: F401 (public here too)
from dynnn_lib.engine.train import (Run, checkpoint, check_against_stream, resolve_device, start,  # noqa: F401
                                    train_next, trained_seconds)
from dynnn_lib.core.registry import head_rule_names
from dynnn_lib.core.store import atomic_torch_save, write_json_checked


def run(cfg: RunConfig, runs_dir: str | Path | None = None, progress: bool = False, stream: Stream | None = None,
        stop_after_task: int | None = None, on_task=None) -> RunResult:
    """Run `cfg` (or return its cached result), from its longest shared prefix (engine/checkpoints.py).

    stop_after_task: stop once this task is trained (and its prefix stored): status "interrupted"; the schedule
    tree trains prefixes this way. on_task: called as ``on_task(t, outputs, reused)`` after every task, reused
    ones included (the explorer draws rows as they come)."""
    if not isinstance(cfg, RunConfig):
        raise ConfigError(f"run() takes a RunConfig, got {type(cfg).__name__}; build one with RunConfig(...) or from_dict()")
    folder = run_dir(cfg, runs_dir)
    hit = cached_result(cfg, runs_dir)
    if hit is not None:
        return hit
    with exclusive_lock(folder / ".lock"):
        hit = cached_result(cfg, runs_dir)  # another process may have finished it while we waited
        if hit is not None:
            return hit
        with pinned_threads(cfg.threads) as threads:
            return _train(cfg, folder, progress, stream, stop_after_task, threads, on_task)


def _train(cfg: RunConfig, folder: Path, progress: bool, stream: Stream | None, stop_after_task: int | None,
           threads: int, on_task=None) -> RunResult:
    """The loop (engine/train.py): every unfinished task trained, evaluated and checkpointed; then the result scored
    under every head rule and stored."""
    from tqdm.auto import tqdm

    r = start(cfg, folder, stream)
    n = len(r.stream)
    result = RunResult(config=cfg, matrix=np.full((n, n), np.nan), task_names=r.stream.task_names, logs=r.logs,
                       timings=r.timings, path=folder / "result.json",
                       provenance={**git_state(), "code": cfg.key_inputs()["code"]["digest"], "threads": threads,
                                   "cpu": cpu()["signature"]})
    start_task = r.timings["resumed_from"] = len(r.logs)  # tasks done before this call (checkpoint or prefix)
    if on_task is not None:
        for t in range(start_task):
            on_task(t, r.evaluator.outputs, True)
    bar = tqdm(range(start_task, n), desc=f"{cfg.method} seed {cfg.seed}", unit="task", disable=not progress,
               initial=start_task, total=n)
    try:
        for t in bar:
            train_next(r, t, progress)
            checkpoint(r, t)
            if on_task is not None:
                on_task(t, r.evaluator.outputs, False)
            if progress:
                row = r.evaluator.outputs.score(cfg.head_rule)[t]
                bar.set_postfix(acc=f"{np.nanmean(row[:t + 1]):.3f}", heads=len(r.model.heads))
            if stop_after_task is not None and t >= stop_after_task and t < n - 1:
                result.status = "interrupted"
                return result
    except TrainingDiverged as e:
        _finish(result, r.evaluator.outputs, cfg)
        result.status, result.error = "failed", str(e)
        write_json_checked(folder / "result.json", result.to_payload())
        raise
    finally:
        bar.close()
    return _complete(result, r)


def _complete(result: RunResult, r: Run) -> RunResult:
    """The finished run: scored under every head rule; outputs, snapshots, weights and result.json written."""
    outputs, folder = r.evaluator.outputs, r.folder
    r.timings["total_s"] = float(sum(r.timings["train_s"]) + sum(r.timings["eval_s"]))
    r.timings["trained_s"] = trained_seconds(r.timings)
    result.model_bytes = model_size_bytes(r.model)
    _finish(result, outputs, r.cfg)
    atomic_torch_save(outputs.state(), folder / "outputs.pt")
    atomic_torch_save(r.snapshots, folder / "snapshots.pt")
    atomic_torch_save({"n_heads": len(r.model.heads), "model": r.model.state_dict()}, folder / "model.pt")
    write_json_checked(folder / "result.json", result.to_payload())
    (folder / "checkpoint.pt").unlink(missing_ok=True)
    return result


def _finish(result: RunResult, outputs: Outputs, cfg: RunConfig) -> None:
    """Score the stored outputs under every registered head rule, plugins' included (milliseconds)."""
    result.matrices = {rule: outputs.score(rule) for rule in head_rule_names()}
    result.matrix = result.matrices[cfg.head_rule]
    result.routing = outputs.routing()
    result.task_heads = list(outputs.rows[-1]["task_heads"]) if outputs.rows else []
