"""What a method is: one class with a name, its parameters and what it does on task t >= 1.

Task 0 is the same for every method (the paper's "full training": trunk and first head on the first task), so it
is trained once per seed and shared (engine/runner.py). A method sees each later task through a :class:`TaskContext`
and returns a :class:`TaskLog`::

    @register
    class MyMethod(Method):
        name = "mine"

        @dataclass(frozen=True)
        class Params:                    # its own parameters: cfg.method_params, validated here
            alpha: float = 1.0

        def train_task(self, ctx):
            epochs = ctx.fit(ctx.network(), lambda out, batch: F.cross_entropy(out, batch.y), ctx.samples())
            return ctx.log("finetune", epochs)

The loss gets the batch it trains on (``batch.x``, ``batch.y`` and whatever the method added to its samples:
``ctx.samples(teacher=logits)`` gives ``batch.teacher``; methods/training.py).

A class declares what it does to the protocol, and results and tables say so: ``expands`` (adds heads),
``frozen_trunk`` (the trunk stops training after task 0), ``uses_past_data`` (keeps or revisits earlier tasks'
images: breaks the paper's "no previous data" rule) and ``incremental`` (False: an upper bound such as joint
training). State a method keeps across tasks (a memory, a Fisher matrix) goes in :meth:`state_dict`, so an
interrupted run resumes bit-identically.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from dynnn_lib.core.config import RunConfig
from dynnn_lib.data.stream import Stream, Task
from dynnn_lib.core import registry
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.evaluation.outputs import History
from dynnn_lib.model.network import DynamicNet
from dynnn_lib.methods.training import OptimizerMemory, Samples, fit, task_seed

@dataclass
class TaskLog:
    task: int
    action: str                      # full | finetune | expand | kd | head_ce | a plugin's own word
    head: int                        # the head that was trained (responsible for this task)
    n_heads: int
    acc_before: float | None = None  # the old model on this task before training (decision data: validation if any)
    head_acc: list[float] = field(default_factory=list)  # each head's accuracy on it, before training
    note: str = ""                   # a short phrase shown beside the action in the training figure
    train_s: float = 0.0
    final_loss: float | None = None
    trunk_changed: bool = False      # what the method says (logged only: evaluation measures the weights, engine/train.py)
    epochs: list[dict] = field(default_factory=list)  # per epoch: loss, its parts (ce, kd, reg...), lr, time_s
    extra: dict = field(default_factory=dict)         # anything else a method wants in the result (its own words)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class NoParams:
    pass


@dataclass
class TaskContext:
    """Everything a method may use on task t: the model, the task, the configuration and its own parameters,
    the earlier tasks' domain statistics and heads (``history``), and a seeded generator."""

    model: DynamicNet
    task: Task
    cfg: RunConfig
    params: Any
    device: torch.device
    history: History | None         # the earlier tasks' domain statistics and responsible heads
    stream: Stream | None = None    # the whole stream; only methods with uses_past_data may read earlier tasks
    progress: bool = False
    uses_past_data: bool = False
    gen: torch.Generator = None     # type: ignore[assignment]
    memory: OptimizerMemory | None = None  # Adam's state carried across tasks (cfg.optimizer_state="keep")
    start: float = field(default_factory=time.perf_counter)

    @classmethod
    def build(cls, model: DynamicNet, task: Task, cfg: RunConfig, device: torch.device, method: "Method | None" = None,
              *, history: History | None = None, stream: Stream | None = None, progress: bool = False,
              memory: OptimizerMemory | None = None, seed_offset: int = 0) -> "TaskContext":
        """The one place a task's context is made: its generator seeded by (seed, task) (+1 for end_task, so that
        consolidating draws other numbers than training did)."""
        return cls(model=model, task=task, cfg=cfg, params=None if method is None else method.params, device=device,
                   history=history, stream=stream, progress=progress,
                   uses_past_data=method is not None and type(method).uses_past_data,
                   gen=torch.Generator().manual_seed(task_seed(cfg.seed, task.index) + seed_offset), memory=memory)

    @property
    def t(self) -> int:
        return self.task.index

    @property
    def y(self) -> torch.Tensor:
        return self.task.train_y.to(self.device)

    def past_tasks(self) -> list[Task]:
        """Tasks 0..t-1 with their data (for methods that declare uses_past_data)."""
        if not self.uses_past_data:
            raise ConfigError("this method reads earlier tasks' data but does not declare uses_past_data = True")
        if self.stream is None:
            raise ConfigError("earlier tasks are not available here; run the method through dynnn_lib.run")
        return self.stream.tasks[: self.t]

    def samples(self, x=None, y=None, **extra: torch.Tensor) -> Samples:
        """What :meth:`fit` trains on: the task's training images and labels (or `x`, `y`: trunk features, a
        Concat) with the per-sample tensors the loss needs (``known=mask, teacher=logits``), batched together."""
        return Samples(self.task.train_x if x is None else x, self.task.train_y if y is None else y, **extra)

    def network(self) -> nn.Module:
        """Trunk + first head as one trainable network (single-head methods)."""
        self.model.set_trunk_trainable(True)
        return nn.Sequential(self.model.trunk, self.model.heads[0])

    def fit(self, net: nn.Module, loss_fn, data, *, epochs: int | None = None, lr: float | None = None,
            milestones: tuple[int, ...] | None = None, augment: bool = False, photometric: float = 0.0,
            desc: str = "") -> list[dict]:
        """The shared training loop with this task's schedule (incremental epochs, lr with the LR trick):
        ``loss_fn(output, batch)`` on the batches of `data` (:meth:`samples`)."""
        cfg = self.cfg
        return fit(net, loss_fn, data, epochs=cfg.inc_epochs if epochs is None else epochs,
                   lr=cfg.incremental_lr() if lr is None else lr,
                   milestones=cfg.inc_milestones if milestones is None else milestones, gamma=cfg.lr_gamma,
                   batch_size=cfg.batch_size, augment=augment, gen=self.gen, device=self.device,
                   progress=self.progress, desc=desc or f"task {self.t}", task=self.t, memory=self.memory,
                   photometric=photometric)

    def log(self, action: str, epochs: list[dict], head: int = 0, trunk_changed: bool = True, **fields: Any) -> TaskLog:
        return TaskLog(task=self.t, action=action, head=head, n_heads=len(self.model.heads),
                       final_loss=epochs[-1]["loss"] if epochs else None, trunk_changed=trunk_changed,
                       epochs=epochs, train_s=time.perf_counter() - self.start, **fields)


class Method:
    """Base class of every method; subclasses set ``name`` and implement :meth:`train_task`."""

    name: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    expands: ClassVar[bool] = False
    frozen_trunk: ClassVar[bool] = False
    uses_past_data: ClassVar[bool] = False
    incremental: ClassVar[bool] = True
    # command-line shortcuts for parameters: {param: (flag, argparse keyword arguments)}; dynnn run adds them
    cli_options: ClassVar[dict[str, tuple[str, dict]]] = {}

    def __init__(self, cfg: RunConfig, params: Any):
        self.cfg, self.params = cfg, params

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        """Validate the method's parameters against the rest of the configuration (one-line ConfigError). Each
        parameter alone is validated by ``Params`` itself; the default checks nothing more."""

    @classmethod
    def check_stream(cls, cfg: RunConfig, n_tasks: int) -> None:
        """Validate the parameters against the stream's length, once it is known (before any training)."""

    @classmethod
    def make_params(cls, values: dict) -> Any:
        """cfg.method_params -> this method's Params (unknown names and bad values: one-line ConfigError)."""
        from dynnn_lib.core.config import build_dataclass

        return build_dataclass(cls.Params, values, "method_params.")

    @classmethod
    def describe(cls) -> str:
        doc = (cls.__doc__ or "").strip().splitlines()
        return doc[0] if doc else cls.name

    @classmethod
    def marks(cls) -> list[str]:
        """How the method departs from the paper's protocol, for tables and results."""
        out = []
        if cls.uses_past_data:
            out.append("stores or revisits earlier tasks' data")
        if not cls.incremental:
            out.append("not incremental: an upper bound")
        return out

    @classmethod
    def task_recipe(cls, cfg: RunConfig, t: int) -> dict:
        """What shapes task t (>= 1) of this method, given the state after task t-1: part of the prefix key
        (RunConfig.prefix_keys), so two runs share their state after task t only when every recipe up to t agrees.
        The default is safe for any method: its name, its class's own code (every class of its inheritance chain,
        core.fingerprint.class_fingerprint) and all its parameters. A built-in whose parameters act on some tasks
        only may share more (DynamicNN's variants: the action their schedule takes on task t); a subclass of it
        never inherits that, it falls back here."""
        from dynnn_lib.core.fingerprint import class_fingerprint

        return {"method": cls.name, "code": class_fingerprint(cls), "params": dict(cfg.method_params)}

    def train_task(self, ctx: TaskContext) -> TaskLog:  # pragma: no cover - the interface
        raise NotImplementedError

    def end_task(self, ctx: TaskContext) -> None:
        """Called after every task, task 0 included (also when task 0 came from the shared cache): the place to
        consolidate what was learnt (a Fisher matrix, a memory update) while the task's data is at hand."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def train_first_task(model: DynamicNet, task: Task, cfg: RunConfig, device: torch.device, progress: bool,
                     memory: OptimizerMemory | None = None) -> TaskLog:
    """Task 0 for every method: trunk and first head trained together, with flip augmentation."""
    ctx = TaskContext.build(model, task, cfg, device, progress=progress, memory=memory)
    epochs = ctx.fit(ctx.network(), lambda out, batch: F.cross_entropy(out, batch.y), ctx.samples(),
                     epochs=cfg.base_epochs, lr=cfg.base_lr, milestones=cfg.base_milestones, augment=True,
                     photometric=cfg.task0_photometric(), desc="task 0 full")
    return ctx.log("full", epochs)



# ------------------------------------------------------------------ registry
ENTRY_POINT_GROUP = "dynnn.methods"
available_methods = registry.available_methods
get_method = registry.get_method


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a Method available by its ``name`` (in run(), the CLI, the explorer, reports).
    Registering the same name again replaces it (re-running a notebook cell)."""
    registry.METHODS.check_class(cls, Method)
    return registry.add(cls)


# methods other packages declare under the entry point group ENTRY_POINT_GROUP
registry.add_loader(registry.entry_point_loader(ENTRY_POINT_GROUP, registry.METHODS.table, Method, register, "method"))
