"""The training loop: stream -> model -> method, task by task, evaluated and checkpointed after each task.

Task 0 is full training (every method's), each later task the method's plugin (``dynnn_lib.methods``); after each
task the method consolidates (``end_task``), the test sets of every task are scored into the stored outputs and the
state is checkpointed (engine/checkpoints.py). A run starts from its own checkpoint or from the longest prefix
another run stored, whichever is further. Nothing here scores a matrix: results are scored from the stored outputs
afterwards (engine/runner.py), so the code that scores never enters the key of what trains (core/fingerprint.py
follows this module's imports).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dynnn_lib.core.config import RunConfig
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.data import Stream, load_stream
from dynnn_lib.engine.checkpoints import load_checkpoint, load_prefix, prefix_group, save_checkpoint, save_prefix
from dynnn_lib.evaluation.outputs import Evaluator, History, Outputs
from dynnn_lib.methods import OptimizerMemory, TaskContext, get_method, train_task
from dynnn_lib.model.build import build_model


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but no CUDA GPU is visible; use device='cpu' or 'auto'")
    return torch.device(name)


def check_against_stream(cfg: RunConfig, stream: Stream) -> None:
    cfg.method_class().check_stream(cfg, len(stream))


@dataclass
class Run:
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
    trained0: dict | None = None                      # task 0's weights before the method consolidated them
    consolidated: bool = False                        # the method's end_task(0) changed the weights: no later prefix


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def start(cfg: RunConfig, folder: Path, stream: Stream | None) -> Run:
    """Everything the run needs, continued from its own checkpoint or its longest shared prefix, whichever is
    further (engine/checkpoints.py)."""
    device = resolve_device(cfg.device)
    stream = stream or load_stream(cfg.data)
    check_against_stream(cfg, stream)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, sort_keys=True))
    (folder / "key.json").write_text(json.dumps(cfg.key_inputs(), indent=1, sort_keys=True))  # dynnn why
    model = build_model(cfg, stream.n_classes).to(device)
    evaluator = Evaluator([(t.test_x, t.test_y) for t in stream.tasks], device)
    method = get_method(cfg.method)(cfg, cfg.params())
    keys = cfg.prefix_keys(len(stream))
    state = load_checkpoint(cfg, folder)
    shared = load_prefix(prefix_group(cfg, folder.parent), keys[:-1])  # the last task's state is the result itself
    if shared is not None and shared["completed"] > (state or {}).get("completed", 0):
        state = shared
    memory = OptimizerMemory(model, (state or {}).get("optimizer_state")) if cfg.optimizer_state == "keep" else None
    r = Run(cfg, folder, stream, device, model, evaluator, method, memory, keys=keys)
    if state is not None:
        r.model.load_saved(state)
        r.model.to(device)
        r.logs, r.timings = state["logs"], state["timings"]
        if state is shared:
            r.timings["reused_tasks"] = state["completed"]  # trained by other runs: this run did not train them
            r.timings["task0_shared"] = True
        if "method_state" in state:
            r.method.load_state_dict(state["method_state"])
            r.consolidated = state.get("consolidated", False)
            _resume_outputs(r, state)
        else:  # task 0 alone, as training left it: this method consolidates (and evaluates) it itself
            _finish_shared_task0(r, state)
    r.previous = _weights(model) if r.snapshots else {}
    return r


def _resume_outputs(r: Run, state: dict) -> None:
    r.evaluator.resume(Outputs.from_state(state["outputs"]))
    r.stored = (len(r.evaluator.outputs.logits), len(r.evaluator.outputs.features))
    r.snapshots = state["snapshots"]


def _finish_shared_task0(r: Run, state: dict) -> None:
    """Task 0 from the shared prefix: this method's end_task(0); the stored evaluation serves when the weights are
    still those it was computed from, else task 0 is evaluated here, exactly as a run trained alone does."""
    r.trained0 = _weights(r.model)
    r.method.end_task(_context(r, r.stream.tasks[0]))
    r.consolidated = not _same_weights(r.trained0, _weights(r.model))
    if state.get("evaluated", True) and not r.consolidated:
        _resume_outputs(r, state)
        return
    r.timings["eval_s"] = []
    _evaluate(r, 0, r.logs[0]["head"], trunk_changed=True, changed_heads=list(range(len(r.model.heads))))
    r.snapshots = [{"n_heads": len(r.model.heads), "state": _weights(r.model)}]
    if not r.consolidated:  # this run's evaluation is every method's that leaves task 0 as it is: store it
        _share_task0(r)


def _changed(before: dict, after: dict) -> tuple[bool, list[int]]:
    """What a task changed, measured from the weights (never the method's word): whether any trunk weight or
    buffer differs, and which heads are new or differ."""
    differs = {k for k in after if k not in before or not torch.equal(before[k], after[k])}
    heads = sorted({int(k.split(".")[1]) for k in differs if k.startswith("heads.")})
    return any(not k.startswith("heads.") for k in differs), heads


def train_next(r: Run, t: int, progress: bool) -> None:
    """Task t: trained, consolidated by the method (end_task), then the test sets scored with the new row."""
    task, outputs = r.stream.tasks[t], r.evaluator.outputs
    heads_so_far = outputs.rows[-1]["task_heads"] if outputs.rows else []
    before = _weights(r.model)
    log = train_task(r.model, task, r.cfg, r.device, progress=progress, stream=r.stream, method=r.method,
                     history=History(domains=outputs.domains[:t], task_heads=heads_so_far), memory=r.memory)
    if t == 0:
        r.trained0 = _weights(r.model)
    r.method.end_task(_context(r, task))
    if t == 0:
        r.consolidated = not _same_weights(r.trained0, _weights(r.model))
    r.timings["train_s"].append(log.train_s)
    r.logs.append(log.to_dict())
    _evaluate(r, t, log.head, *_changed(before, _weights(r.model)))


def _evaluate(r: Run, t: int, head: int, trunk_changed: bool, changed_heads: list[int]) -> None:
    outputs = r.evaluator.outputs
    heads_so_far = outputs.rows[-1]["task_heads"] if outputs.rows else []
    t0 = time.perf_counter()
    r.evaluator.add_domain(r.model, r.stream.tasks[t].train_x)
    r.evaluator.add_row(r.model, heads_so_far + [head], changed_heads=changed_heads, trunk_changed=trunk_changed)
    r.timings["eval_s"].append(time.perf_counter() - t0)


def checkpoint(r: Run, t: int) -> None:
    """After task t: the weights that changed (a snapshot), everything needed to continue from here, and the
    shared prefix (task 0: the state training left; task t: what it changed)."""
    current = _weights(r.model)
    r.snapshots.append({"n_heads": len(r.model.heads), "state": {
        k: v for k, v in current.items() if k not in r.previous or not torch.equal(v, r.previous[k])}})
    r.previous = current
    outputs = r.evaluator.outputs
    save_checkpoint(r.cfg, r.folder, {**_state(r), "key": r.cfg.key(), "timings": r.timings,
                                      "method_state": r.method.state_dict(), "consolidated": r.consolidated,
                                      **_memory(r)})
    if t == 0:
        _share_task0(r)
    elif t < len(r.keys) - 1 and not r.consolidated:
        logits, features = r.stored
        save_prefix(prefix_group(r.cfg, r.folder.parent), r.keys, t, {
            "snapshot": r.snapshots[-1], "logits": outputs.logits[logits:], "features": outputs.features[features:],
            "row": outputs.rows[-1], "domain": outputs.domains[-1].to_dict(), "log": r.logs[-1],
            "train_s": r.timings["train_s"][-1], "eval_s": r.timings["eval_s"][-1],
            "method_state": r.method.state_dict(), **_memory(r)})
    r.stored = (len(outputs.logits), len(outputs.features))


def _state(r: Run) -> dict:
    return {"completed": len(r.logs), "n_heads": len(r.model.heads), "model": _weights(r.model),
            "outputs": r.evaluator.outputs.state(), "snapshots": r.snapshots, "logs": r.logs,
            "timings": {k: r.timings[k] for k in ("train_s", "eval_s")}}


def _memory(r: Run) -> dict:
    return {"optimizer_state": r.memory.state_dict()} if r.memory else {}


def _share_task0(r: Run) -> None:
    """Task 0's prefix: the weights as training left them and Adam's state (keep runs), with this run's evaluation
    only when its method's end_task left the weights unchanged (then it is every such method's evaluation)."""
    if len(r.keys) < 2:
        return
    state = {**_state(r), "completed": 1, "model": r.trained0, **_memory(r), "evaluated": not r.consolidated}
    if r.consolidated:
        state = {k: v for k, v in state.items() if k not in ("outputs", "snapshots")}
        state["timings"] = {"train_s": state["timings"]["train_s"], "eval_s": []}
    save_prefix(prefix_group(r.cfg, r.folder.parent), r.keys, 0, state)


def _context(r: Run, task) -> TaskContext:
    """The context a method's end_task sees (its generator seeded apart from training's)."""
    return TaskContext.build(r.model, task, r.cfg, r.device, r.method, stream=r.stream, seed_offset=1)


def trained_seconds(timings: dict) -> float:
    """Training and evaluation seconds of the tasks this call trained (not those it resumed from)."""
    done = timings.get("resumed_from", 0)
    return float(sum(timings["train_s"][done:]) + sum(timings["eval_s"][done:]))
