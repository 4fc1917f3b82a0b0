"""Run a configuration: stream -> model -> method -> accuracy matrices, checkpointed and cached.

The loop: task 0 (full training), then each later task through the method's plugin (``dynnn_lib.methods``),
evaluation on every task's test set after each task, a checkpoint after each task. A run starts from the longest
prefix another run stored (the state after task t, shared by every run whose tasks 0..t are trained alike: task 0
by every method, tasks 0..k by two expansion schedules that first differ at k+1). The result's schema is in
engine/results.py, run folders, checkpoints and prefixes in engine/cache.py.

Run folder ``<runs_dir>/<key>/``: ``config.json``; ``checkpoint.pt`` while it runs; ``result.json`` (engine/results.py);
``outputs.pt`` (the test-set outputs every head rule is scored from, evaluation/outputs.py); ``snapshots.pt`` (after each
task, the weights that changed); ``model.pt`` (final weights and the number of heads).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dynnn_lib.engine.cache import (cached_result, default_runs_dir, exclusive_lock, load_checkpoint, load_outputs,  # noqa: F401
                                    load_prefix, prefix_group, run_dir, save_checkpoint, save_prefix)
from dynnn_lib.core.config import RunConfig
from dynnn_lib.data import Stream, load_stream
from dynnn_lib.core.errors import ConfigError, TrainingDiverged
from dynnn_lib.evaluation.outputs import Evaluator, History, Outputs
from dynnn_lib.core.fingerprint import code_fingerprint, cpu, git_state, pinned_threads
from dynnn_lib.methods import OptimizerMemory, TaskContext, get_method, train_task
from dynnn_lib.model.network import model_size_bytes
from dynnn_lib.model.build import build_model
from dynnn_lib.engine.results import RunResult, load_result  # noqa: F401 (public here too)
from dynnn_lib.evaluation.routing import HEAD_RULES
from dynnn_lib.core.store import atomic_torch_save, write_json_checked


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but no CUDA GPU is visible; use device='cpu' or 'auto'")
    return torch.device(name)


def check_against_stream(cfg: RunConfig, stream: Stream) -> None:
    cfg.method_class().check_stream(cfg, len(stream))


def run(cfg: RunConfig, runs_dir: str | Path | None = None, progress: bool = False, stream: Stream | None = None,
        stop_after_task: int | None = None, on_task=None) -> RunResult:
    """Run `cfg` (or return its cached result), from its longest shared prefix (engine/cache.py).

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
        with pinned_threads() as threads:
            return _train(cfg, folder, progress, stream, stop_after_task, threads, on_task)


@dataclass
class _Run:
    """A run in progress: the stream, the model, its evaluation so far, the method, and what the checkpoint keeps."""

    cfg: RunConfig
    folder: Path
    stream: Stream
    device: torch.device
    model: Any
    evaluator: Evaluator
    method: Any
    memory: OptimizerMemory | None
    logs: list = field(default_factory=list)
    timings: dict = field(default_factory=lambda: {"train_s": [], "eval_s": []})
    snapshots: list = field(default_factory=list)
    previous: dict = field(default_factory=dict)
    keys: list = field(default_factory=list)          # the prefix key after each task (RunConfig.prefix_keys)
    stored: tuple = (0, 0)                            # outputs' logits and features entries already in a prefix


def _train(cfg: RunConfig, folder: Path, progress: bool, stream: Stream | None, stop_after_task: int | None,
           threads: int, on_task=None) -> RunResult:
    """The loop: every unfinished task trained (task 0: full training; later: the method), evaluated on every
    task's test set and checkpointed; then the result scored under every head rule and stored."""
    from tqdm.auto import tqdm

    r = _start(cfg, folder, stream)
    n = len(r.stream)
    result = RunResult(config=cfg, matrix=np.full((n, n), np.nan), task_names=r.stream.task_names, logs=r.logs,
                       timings=r.timings, path=folder / "result.json",
                       provenance={**git_state(), "code": code_fingerprint(), "threads": threads,
                                   "cpu": cpu()["signature"]})
    start_task = r.timings["resumed_from"] = len(r.logs)  # tasks done before this call (checkpoint or prefix)
    if on_task is not None:
        for t in range(start_task):
            on_task(t, r.evaluator.outputs, True)
    bar = tqdm(range(start_task, n), desc=f"{cfg.method} seed {cfg.seed}", unit="task", disable=not progress,
               initial=start_task, total=n)
    try:
        for t in bar:
            _train_task(r, t, progress)
            _checkpoint(r, t)
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


def _start(cfg: RunConfig, folder: Path, stream: Stream | None) -> _Run:
    """Everything the run needs, continued from its own checkpoint or its longest shared prefix, whichever is
    further (engine/cache.py)."""
    device = resolve_device(cfg.device)
    stream = stream or load_stream(cfg.data)
    check_against_stream(cfg, stream)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, sort_keys=True))
    model = build_model(cfg, stream.n_classes).to(device)
    evaluator = Evaluator([(t.test_x, t.test_y) for t in stream.tasks], device)
    method = get_method(cfg.method)(cfg, cfg.params())
    keys = cfg.prefix_keys(len(stream))
    state = load_checkpoint(cfg, folder)
    shared = load_prefix(prefix_group(cfg, folder.parent), keys[:-1])  # the last task's state is the result itself
    if shared is not None and shared["completed"] > (state or {}).get("completed", 0):
        state = shared
    memory = OptimizerMemory(model, (state or {}).get("optimizer_state")) if cfg.optimizer_state == "keep" else None
    r = _Run(cfg, folder, stream, device, model, evaluator, method, memory, keys=keys)
    if state is not None:
        r.model.load_saved(state)
        r.model.to(device)
        r.evaluator.resume(Outputs.from_state(state["outputs"]))
        r.stored = (len(r.evaluator.outputs.logits), len(r.evaluator.outputs.features))
        r.logs, r.timings, r.snapshots = state["logs"], state["timings"], state["snapshots"]
        if state is shared:
            r.timings["reused_tasks"] = state["completed"]  # trained by other runs: this run did not train them
            r.timings["task0_shared"] = True
        if "method_state" not in state:  # task 0 alone is shared by every method: let this one consolidate it
            r.method.end_task(_context(r, stream.tasks[0]))
        else:
            r.method.load_state_dict(state["method_state"])
    r.previous = {k: v.clone() for k, v in model.state_dict().items()} if r.snapshots else {}
    return r


def _train_task(r: _Run, t: int, progress: bool) -> None:
    """Task t: trained, consolidated by the method (end_task), then the test sets scored with the new row."""
    task, outputs = r.stream.tasks[t], r.evaluator.outputs
    heads_so_far = outputs.rows[-1]["task_heads"] if outputs.rows else []
    log = train_task(r.model, task, r.cfg, r.device, progress=progress, stream=r.stream, method=r.method,
                     history=History(domains=outputs.domains[:t], task_heads=heads_so_far), memory=r.memory)
    r.method.end_task(_context(r, task))
    t0 = time.perf_counter()
    r.evaluator.add_domain(r.model, task.train_x)
    r.evaluator.add_row(r.model, heads_so_far + [log.head], changed_heads=[log.head], trunk_changed=log.trunk_changed)
    r.timings["train_s"].append(log.train_s)
    r.timings["eval_s"].append(time.perf_counter() - t0)
    r.logs.append(log.to_dict())


def _checkpoint(r: _Run, t: int) -> None:
    """After task t: the weights that changed (a snapshot), everything needed to continue from here, and the
    shared prefix (task 0: the whole state without the method's; task t: what it changed)."""
    current = {k: v.clone() for k, v in r.model.state_dict().items()}
    r.snapshots.append({"n_heads": len(r.model.heads), "state": {
        k: v for k, v in current.items() if k not in r.previous or not torch.equal(v, r.previous[k])}})
    r.previous = current
    outputs, memory = r.evaluator.outputs, ({"optimizer_state": r.memory.state_dict()} if r.memory else {})
    state = {"completed": t + 1, "n_heads": len(r.model.heads), "model": current, "outputs": outputs.state(),
             "snapshots": r.snapshots, "logs": r.logs, "timings": {k: r.timings[k] for k in ("train_s", "eval_s")}}
    save_checkpoint(r.cfg, r.folder, {**state, "key": r.cfg.key(), "timings": r.timings,
                                      "method_state": r.method.state_dict(), **memory})
    if t < len(r.keys) - 1:
        logits, features = r.stored
        save_prefix(prefix_group(r.cfg, r.folder.parent), r.keys, t, state if t == 0 else {
            "snapshot": r.snapshots[-1], "logits": outputs.logits[logits:], "features": outputs.features[features:],
            "row": outputs.rows[-1], "domain": outputs.domains[-1].to_dict(), "log": r.logs[-1],
            "train_s": r.timings["train_s"][-1], "eval_s": r.timings["eval_s"][-1],
            "method_state": r.method.state_dict(), **memory})
    r.stored = (len(outputs.logits), len(outputs.features))


def _complete(result: RunResult, r: _Run) -> RunResult:
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


def trained_seconds(timings: dict) -> float:
    """Training and evaluation seconds of the tasks this call trained (not those it resumed from)."""
    done = timings.get("resumed_from", 0)
    return float(sum(timings["train_s"][done:]) + sum(timings["eval_s"][done:]))


def _finish(result: RunResult, outputs: Outputs, cfg: RunConfig) -> None:
    """Score the stored outputs under every head rule (milliseconds)."""
    result.matrices = {rule: outputs.score(rule) for rule in HEAD_RULES}
    result.matrix = result.matrices[cfg.head_rule]
    result.routing = outputs.routing()
    result.task_heads = list(outputs.rows[-1]["task_heads"]) if outputs.rows else []


def _context(r: _Run, task) -> TaskContext:
    """The context a method's end_task sees (its generator seeded apart from training's)."""
    return TaskContext.build(r.model, task, r.cfg, r.device, r.method, stream=r.stream, seed_offset=1)
