"""Run a configuration: stream -> model -> method -> accuracy matrices, checkpointed and cached.

The loop: task 0 (full training, shared between methods through the cache), then each later task through the
method's plugin (``dynnn_lib.methods``), evaluation on every task's test set after each task, a checkpoint after
each task. The result's schema is in engine/results.py, run folders and checkpoints in engine/cache.py.

Run folder ``<runs_dir>/<key>/``: ``config.json``; ``checkpoint.pt`` while it runs; ``result.json`` (engine/results.py);
``outputs.pt`` (the test-set outputs every head rule is scored from, evaluation/outputs.py); ``snapshots.pt`` (after each
task, the weights that changed); ``model.pt`` (final weights and the number of heads).
"""
from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from dynnn_lib.engine.cache import (cached_result, default_runs_dir, exclusive_lock, load_checkpoint, load_outputs,
                                    run_dir, save_checkpoint)
from dynnn_lib.core.config import RunConfig, from_dict
from dynnn_lib.data import Stream, load_stream
from dynnn_lib.core.errors import ConfigError, TrainingDiverged
from dynnn_lib.evaluation.outputs import Evaluator, History, Outputs
from dynnn_lib.core.fingerprint import code_fingerprint, git_state, pinned_threads
from dynnn_lib.methods import OptimizerMemory, TaskContext, get_method, task_seed, train_task
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
        stop_after_task: int | None = None) -> RunResult:
    """Run `cfg` (or return its cached result). `stop_after_task` exists for tests of resuming."""
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
            return _train(cfg, folder, progress, stream, stop_after_task, threads)


def _train(cfg: RunConfig, folder: Path, progress: bool, stream: Stream | None, stop_after_task: int | None,
           threads: int) -> RunResult:
    from tqdm.auto import tqdm

    device = resolve_device(cfg.device)
    stream = stream or load_stream(cfg.data)
    check_against_stream(cfg, stream)
    n = len(stream)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, sort_keys=True))

    model = build_model(cfg, stream.n_classes).to(device)
    evaluator = Evaluator([(t.test_x, t.test_y) for t in stream.tasks], device)
    method = get_method(cfg.method)(cfg, cfg.params())
    state = load_checkpoint(cfg, folder)
    logs, timings, snapshots = [], {"train_s": [], "eval_s": []}, []
    memory = OptimizerMemory(model, (state or {}).get("optimizer_state")) if cfg.optimizer_state == "keep" else None
    if state is not None:
        model.load_saved(state)
        model.to(device)
        evaluator.outputs = Outputs.from_state(state["outputs"])
        logs, timings, snapshots = state["logs"], state["timings"], state["snapshots"]
        if "base_key" in state:  # task 0 from the shared cache: let the method consolidate it as if it had trained it
            timings["task0_shared"] = True
            method.end_task(_context(model, stream.tasks[0], cfg, method, device, stream))
        else:
            method.load_state_dict(state.get("method_state", {}))
    start_task = len(logs)
    outputs = evaluator.outputs
    previous = {k: v.clone() for k, v in model.state_dict().items()} if snapshots else {}

    result = RunResult(config=cfg, matrix=np.full((n, n), np.nan), task_names=stream.task_names, logs=logs,
                       timings=timings, path=folder / "result.json",
                       provenance={**git_state(), "code": code_fingerprint(), "threads": threads})
    bar = tqdm(range(start_task, n), desc=f"{cfg.method} seed {cfg.seed}", unit="task", disable=not progress,
               initial=start_task, total=n)
    try:
        for t in bar:
            task = stream.tasks[t]
            heads_so_far = outputs.rows[-1]["task_heads"] if outputs.rows else []
            log = train_task(model, task, cfg, device, progress=progress, stream=stream, method=method,
                             history=History(domains=outputs.domains[:t], task_heads=heads_so_far), memory=memory)
            method.end_task(_context(model, task, cfg, method, device, stream))
            t0 = time.perf_counter()
            evaluator.add_domain(model, task.train_x)
            evaluator.add_row(model, heads_so_far + [log.head], changed_heads=[log.head],
                              trunk_changed=log.trunk_changed)
            timings["train_s"].append(log.train_s)
            timings["eval_s"].append(time.perf_counter() - t0)
            logs.append(log.to_dict())
            current = {k: v.clone() for k, v in model.state_dict().items()}
            snapshots.append({"n_heads": len(model.heads), "state": {
                k: v for k, v in current.items() if k not in previous or not torch.equal(v, previous[k])}})
            previous = current
            save_checkpoint(cfg, folder, {
                "key": cfg.key(), "completed": t + 1, "n_heads": len(model.heads), "model": current,
                "outputs": outputs.state(), "snapshots": snapshots, "logs": logs, "timings": timings,
                "method_state": method.state_dict(), **({"optimizer_state": memory.state_dict()} if memory else {})})
            if progress:
                row = outputs.score(cfg.head_combine)[t]
                bar.set_postfix(acc=f"{np.nanmean(row[:t + 1]):.3f}", heads=len(model.heads))
            if stop_after_task is not None and t >= stop_after_task and t < n - 1:
                result.status = "interrupted"
                return result
    except TrainingDiverged as e:
        _finish(result, outputs, cfg)
        result.status, result.error = "failed", str(e)
        write_json_checked(folder / "result.json", result.to_payload())
        raise
    finally:
        bar.close()
    timings["total_s"] = float(sum(timings["train_s"]) + sum(timings["eval_s"]))
    result.model_bytes = model_size_bytes(model)
    _finish(result, outputs, cfg)
    atomic_torch_save(outputs.state(), folder / "outputs.pt")
    atomic_torch_save(snapshots, folder / "snapshots.pt")
    atomic_torch_save({"n_heads": len(model.heads), "model": model.state_dict()}, folder / "model.pt")
    write_json_checked(folder / "result.json", result.to_payload())
    (folder / "checkpoint.pt").unlink(missing_ok=True)
    return result


def _finish(result: RunResult, outputs: Outputs, cfg: RunConfig) -> None:
    """Score the stored outputs under every head rule (milliseconds)."""
    result.matrices = {rule: outputs.score(rule) for rule in HEAD_RULES}
    result.matrix = result.matrices[cfg.head_combine]
    result.routing = outputs.routing()
    result.task_heads = list(outputs.rows[-1]["task_heads"]) if outputs.rows else []


def _context(model, task, cfg: RunConfig, method, device: torch.device, stream: Stream) -> TaskContext:
    return TaskContext(model=model, task=task, cfg=cfg, params=method.params, device=device, history=None,
                       stream=stream, uses_past_data=type(method).uses_past_data,
                       gen=torch.Generator().manual_seed(task_seed(cfg.seed, task.index) + 1))


# ------------------------------------------------------------------ many runs
def _worker(cfg_dict: dict, runs_dir: str, plugins: list[str]) -> dict:
    import importlib

    for module in plugins:  # methods registered by other packages' modules: import them here too
        importlib.import_module(module)
    res = run(from_dict(cfg_dict), runs_dir)
    return res.to_payload()


def _plugin_module(cfg: RunConfig) -> str | None:
    """The module to import in a worker for cfg's method ('__main__' when it was defined in a notebook)."""
    module = cfg.method_class().__module__
    return None if module.startswith("dynnn_lib.") else module


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
        modules = {_plugin_module(configs[ix[0]]) for ix in todo.values()} - {None}
        if jobs > 1 and "__main__" in modules:  # a method defined in a notebook cannot be imported by a worker
            print("runs: a method defined in this notebook/script runs in this process (jobs=1); put it in a module "
                  "to run in parallel", file=sys.stderr)
            jobs = 1
        if jobs <= 1 or len(todo) <= 1:
            for indices in todo.values():
                fill(indices, run(configs[indices[0]], runs_dir, progress=False))
                bar.update(len(indices))
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(_worker, configs[ix[0]].to_dict(), str(runs_dir), sorted(modules)): ix for ix in todo.values()}
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
    from dynnn_lib.model.network import DynamicNet
    from dynnn_lib.model.pretrain import pretrained_state

    seen = set()
    for cfg in configs:
        spec = (cfg.pretrained, cfg.backbone, cfg.gn_groups, cfg.data.image_size, cfg.data.cache_dir)
        if cfg.pretrained and spec not in seen:
            seen.add(spec)
            pretrained_state(cfg, lambda n, c=cfg: DynamicNet(c, n))


def run_seeds(cfg: RunConfig, seeds: Iterable[int], runs_dir: str | Path | None = None, jobs: int = 1,
              progress: bool = True) -> list[RunResult]:
    return run_many([cfg.replace(seed=s) for s in seeds], runs_dir, jobs, progress)
