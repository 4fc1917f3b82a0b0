"""DynamicNN's parameters and its frozen-trunk step, shared by ``expand``, ``kd`` and ``combined``.

After task 0 the trunk is frozen, so the task's trunk features are computed once and every later step trains one
head on them; the frozen teacher's logits are computed once too. On each task the step measures the old model
before training (evaluation.measure_before: overall, per head, the "known" mask; the old model's prediction formed
by ``known_rule``), asks the method's :meth:`FrozenTrunkMethod.choose` what to do, and trains one head: a new one
(``expand``), an existing one with knowledge distillation on the known samples (``kd``), or the newest with
cross-entropy alone (``head_ce``). The three methods differ only in ``choose``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from dynnn_lib.core.errors import ConfigError
from dynnn_lib.core.fingerprint import class_fingerprint
from dynnn_lib.evaluation.outputs import decision_accuracy, measure_before, trunk_features
from dynnn_lib.evaluation.routing import LABEL_FREE_RULES
from dynnn_lib.methods.base import Method, TaskContext, TaskLog
from dynnn_lib.methods.training import Batch, kd_loss

KD_HEADS = ("best", "worst", "routed")
CE_ON = ("all", "unknown")
HEAD_INIT = ("copy", "scratch")


def _choice(name: str, value, options) -> None:
    if value not in options:
        raise ConfigError(f"method_params.{name}={value!r} is not valid; choose one of: {', '.join(options)}")


@dataclass(frozen=True)
class Params:
    """DynamicNN's parameters (``RunConfig.method_params`` of expand, kd, combined), with the source of each
    default. The sources are the paper (IROS 2019 LOR), its poster/oral and abstract figure; what they leave
    open has a default and says so."""

    expand_at: tuple[int, ...] = ()     # tasks that get a new head (the paper expanded at task 1, or at 1 and 3)
    expand_threshold: float | None = None  # automatic rule instead: expand when the old model's accuracy on the
                                        # task's decision data (data.decide_on), before training, is below this
    kd_head: str = "best"               # sources disagree (text: best, table title: worst); routed: the head the
                                        # router sends most of the new task's images to (its nearest known domain)
    kd_temperature: float = 2.0         # not published: KL on softened logits, T=2
    kd_weight: float = 1.0              # not published: lambda = 1
    ce_on: str = "all"                  # poster/oral: CE on all samples; abstract figure: unknown only
    known_rule: str = "router"          # how the old model predicts the new task before training (known samples,
                                        # expansion rule): a label-free head rule (evaluation/routing.py)
    head_init: str = "copy"             # a new head starts as a copy of the best head (not published), or scratch

    def __post_init__(self) -> None:
        tasks = tuple(self.expand_at) if isinstance(self.expand_at, (list, tuple)) else self.expand_at
        if not isinstance(tasks, tuple) or any(isinstance(t, bool) or not isinstance(t, int) for t in tasks):
            raise ConfigError(f"method_params.expand_at={self.expand_at!r} must be task indices (integers), e.g. [1, 3]")
        object.__setattr__(self, "expand_at", tasks)
        if any(t < 0 for t in tasks):
            raise ConfigError(f"expand_at={list(tasks)!r} has a negative task index; tasks count from 0")
        if 0 in tasks:
            raise ConfigError("expand_at contains 0: task 0 always trains the full network; expand at tasks >= 1")
        if len(set(tasks)) != len(tasks):
            raise ConfigError(f"expand_at={list(tasks)!r} lists a task twice; give each task once")
        t = self.expand_threshold
        if t is not None:
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 1:
                raise ConfigError(f"expand_threshold={t!r} must be a fraction in (0, 1], e.g. 0.8")
            if tasks:
                raise ConfigError("give either expand_at (fixed schedule) or expand_threshold (automatic), not both")
        _choice("kd_head", self.kd_head, KD_HEADS)
        _choice("ce_on", self.ce_on, CE_ON)
        _choice("known_rule", self.known_rule, LABEL_FREE_RULES)
        _choice("head_init", self.head_init, HEAD_INIT)
        temp = self.kd_temperature
        if isinstance(temp, bool) or not isinstance(temp, (int, float)) or not temp > 0:
            raise ConfigError(f"kd_temperature={temp!r} must be a positive number")
        w = self.kd_weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
            raise ConfigError(f"kd_weight={w!r} must be a number >= 0")


def ce_loss(logits: torch.Tensor, y: torch.Tensor, known: torch.Tensor | None = None, ce_on: str = "all") -> torch.Tensor:
    """Cross-entropy on all samples, or (ce_on="unknown") only on those the old model got wrong."""
    if ce_on == "unknown" and known is not None:
        mask = ~known
        if not mask.any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits[mask], y[mask])
    return F.cross_entropy(logits, y)


def pick_head(head_acc: list[float], which: str, routed: list[float] | None = None) -> int:
    """Index of the best- or worst-scoring head, or the head most of the task routes to (ties: the newest)."""
    score = torch.tensor(routed if which == "routed" and routed else head_acc)
    if which == "worst":
        score = -score
    best = score.max()
    return int(torch.nonzero(score == best).max())


_SHARING: set[type] = set()


def shares_tasks(cls: type) -> type:
    """Class decorator for the built-in variants (expand, kd, combined): their prefix keys name the action each task
    takes, so they share every task they train alike. It marks this exact class only: a subclass is keyed by its
    own code and parameters, whatever it overrides."""
    _SHARING.add(cls)
    return cls


class FrozenTrunkMethod(Method):
    """Trunk frozen after task 0; each task trains one head: a new one (expand), an old one with knowledge
    distillation on the known samples (kd), or the newest with cross-entropy alone (head_ce)."""

    Params = Params
    frozen_trunk = True
    # the CLI's shortcuts for these parameters (dynnn run --expand 1 3 --kd-head worst --expand-threshold 0.5)
    cli_options = {"expand_at": ("--expand", {"type": int, "nargs": "+", "metavar": "TASK",
                                              "help": "expand at these task indices (DynamicNN)"}),
                   "expand_threshold": ("--expand-threshold", {"type": float, "help": "expand automatically below "
                                                               "this accuracy (0..1) (DynamicNN)"}),
                   "kd_head": ("--kd-head", {"choices": list(KD_HEADS), "help": "head to distil into (DynamicNN)"})}

    @classmethod
    def check(cls, cfg) -> None:
        p = cfg.params()
        if not cls.expands and p.expand_at:
            raise ConfigError(f"method {cls.name!r} never expands; drop expand_at or use method 'combined'")
        if not cls.expands and p.expand_threshold is not None:
            raise ConfigError(f"expand_threshold only applies to methods that expand ('expand', 'combined'), "
                              f"not {cls.name!r}")

    @classmethod
    def check_stream(cls, cfg, n_tasks: int) -> None:
        tasks = cfg.params().expand_at
        if any(t >= n_tasks for t in tasks):
            raise ConfigError(f"expand_at={list(tasks)} is out of range: the stream has {n_tasks} tasks "
                              f"(0..{n_tasks - 1})")

    otherwise: ClassVar[str] = "kd"  # the action on a task that gets no new head: what the variants differ in

    @classmethod
    def planned(cls, p: Params, t: int) -> str | None:
        """The action on task t when the schedule fixes it ('expand', 'kd' or 'head_ce'); None when the automatic
        rule decides from the data (expand_threshold)."""
        if t in p.expand_at:
            return "expand"
        return None if p.expand_threshold is not None else cls.otherwise

    def choose(self, ctx: TaskContext, before) -> str:
        """The action on this task: the schedule's, or the automatic rule's (expand below the threshold)."""
        planned = self.planned(self.params, ctx.t)
        if planned is not None:
            return planned
        return "expand" if before.acc < self.params.expand_threshold else self.otherwise

    @classmethod
    def task_recipe(cls, cfg, t: int) -> dict:
        """What shapes task t: the action and the parameters that act in it, not the variant's name, so kd,
        expand and combined share every task they train alike (combined expand@[3] and kd share tasks 0..2; two
        schedules share the tasks before the first one they differ on). The automatic rule's action depends on
        the data: its recipe is the rule itself. Only the exact built-in variants share this way (``shares_tasks``);
        any other class, a subclass of them overriding anything or adding a parameter included, keys every task
        with its own code and all its parameters (``Method.task_recipe``)."""
        if cls not in _SHARING:
            return super().task_recipe(cfg, t)
        p, action = cfg.params(), cls.planned(cfg.params(), t)
        code = sorted(class_fingerprint(c) for c in _SHARING)  # the variants' code: they share what they train alike
        recipe = {"family": "frozen_trunk", "code": code, "action": action,
                  "known_rule": p.known_rule}
        if action is None:
            return {**recipe, "auto": p.expand_threshold, "otherwise": cls.otherwise,
                    **{k: v for k, v in asdict(p).items() if k != "expand_at"}}
        if action == "expand":
            return {**recipe, "head_init": p.head_init}
        if action == "kd":
            return {**recipe, "kd_head": p.kd_head, "kd_temperature": p.kd_temperature, "kd_weight": p.kd_weight,
                    "ce_on": p.ce_on}
        return recipe  # head_ce: cross-entropy on every sample of the newest head

    def train_task(self, ctx: TaskContext) -> TaskLog:
        p, model, y = self.params, ctx.model, ctx.y
        model.set_trunk_trainable(False)
        feats = trunk_features(model, ctx.task.train_x, ctx.device)
        before = measure_before(model, feats, y, p.known_rule, ctx.history)
        before.acc = decision_accuracy(model, ctx.task, ctx.cfg.data, ctx.device, before, p.known_rule, ctx.history)
        action = self.choose(ctx, before)
        known, teacher = before.known, {}
        if action == "expand":
            head = model.add_head(pick_head(before.head_acc, "best") if p.head_init == "copy" else None)
        elif action == "kd":
            head = pick_head(before.head_acc, p.kd_head, before.routed)
            teacher = {"teacher": before.logits[head]}  # the head before training: a frozen copy's outputs
        else:
            head = len(model.heads) - 1
        model.heads.to(ctx.device)

        def loss_fn(out: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
            k = batch.known if action == "kd" else None
            parts = {"ce": ce_loss(out, batch.y, k, p.ce_on)}
            if teacher and p.kd_weight > 0:
                parts["kd"] = p.kd_weight * kd_loss(out[k], batch.teacher[k], p.kd_temperature)
            return parts

        epochs = ctx.fit(model.heads[head], loss_fn, ctx.samples(feats, y, known=known, **teacher),
                         desc=f"task {ctx.t} {action}")
        return ctx.log(action, epochs, head=head, trunk_changed=False, acc_before=before.acc,
                       head_acc=before.head_acc, note=f"known {known.float().mean().item():.0%}",
                       extra={"known_fraction": known.float().mean().item(), "routed": before.routed})
