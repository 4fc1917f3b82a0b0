"""The DynamicNN machinery shared by ``expand``, ``kd`` and ``combined`` (and finetune's "before" measurement).

After task 0 the trunk is frozen, so the task's trunk features are computed once and every later step trains one
head on them; the frozen teacher's logits are computed once too.

* :func:`measure_before` - the old model's accuracy on the new task before training (overall and per head) and
  the "known" mask (samples the old model already classifies right); the old model's prediction is formed by
  ``known_rule`` (default: the router, see routing.py);
* :func:`pick_head` - the best- or worst-scoring head, or the one the router sends the task to;
* :func:`train_head` - expand, distil or fine-tune one head: what the three methods differ in is only which of
  these they choose on a task (their :meth:`choose`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..config import RunConfig
from ..evaluation import head_logits, trunk_features
from ..model import DynamicNet
from ..routing import DomainStats, combine, domain_features, routed_heads
from .base import DYNAMICNN_FIELDS, Method, TaskContext, TaskLog
from .training import ce_loss, kd_loss


@dataclass
class Before:
    acc: float
    head_acc: list[float]
    known: torch.Tensor  # bool (N,)
    routed: list[float] = field(default_factory=list)  # fraction of the task's images the router sends to each head
    logits: torch.Tensor | None = None  # (n_heads, N, C) every head on the task's images: the KD teacher's outputs
    features: torch.Tensor | None = None  # (N, C, H, W) the frozen trunk's output on the task's images


@dataclass
class History:
    """What a task may know about the earlier ones: their domain statistics and the head responsible for each."""

    domains: list[DomainStats] = field(default_factory=list)
    task_heads: list[int] = field(default_factory=list)


def measure_before(model: DynamicNet, feats: torch.Tensor, y: torch.Tensor, rule: str = "router",
                   history: History | None = None) -> Before:
    """The old model on the new task's training data, before training on it."""
    logits = torch.stack([head_logits(h, feats) for h in model.heads])
    yd = y.cpu()
    history = history or History()
    routed = routed_heads(history.task_heads or [len(model.heads) - 1], history.domains, domain_features(feats).cpu())
    known = combine(rule, logits, routed if rule == "router" else None) == yd
    head_acc = [(l.argmax(-1) == yd).float().mean().item() for l in logits]
    share = torch.bincount(routed, minlength=len(model.heads)).double() / max(len(routed), 1)
    return Before(acc=known.float().mean().item(), head_acc=head_acc, known=known.to(feats.device),
                  routed=share.tolist(), logits=logits, features=feats)


def decision_accuracy(model: DynamicNet, task, cfg: RunConfig, device: torch.device, before: Before,
                      history: History | None = None) -> float:
    """The old model's accuracy that the expansion rule compares with ``expand_threshold``: measured like
    ``before.acc`` but on the task's decision set (data/stream.decision_set: its validation split when the layout
    has one and ``data.decide_on="validation"``). Without a validation split it is ``before.acc`` itself (the
    training data), so the embedded stream is unchanged. The known mask, the teacher and the per-head accuracies
    stay on the training samples (distillation trains on them)."""
    from ..data.stream import decision_set

    x, y = decision_set(task, cfg.data)
    if x is task.train_x:
        return before.acc
    return measure_before(model, trunk_features(model, x, device), y, cfg.known_rule, history).acc


def pick_head(head_acc: list[float], which: str, routed: list[float] | None = None) -> int:
    """Index of the best- or worst-scoring head, or the head most of the task routes to (ties: the newest)."""
    score = torch.tensor(routed if which == "routed" and routed else head_acc)
    if which == "worst":
        score = -score
    best = score.max()
    return int(torch.nonzero(score == best).max())


def decide(cfg: RunConfig, t: int, before: Before) -> str:
    """'expand', 'kd' or 'head_ce' for incremental task t >= 1: what cfg's frozen-trunk method chooses there."""
    from types import SimpleNamespace

    from .base import get_method

    return get_method(cfg.method)(cfg, cfg.params()).choose(SimpleNamespace(t=t), before)


class FrozenTrunkMethod(Method):
    """Trunk frozen after task 0; each task trains one head: a new one (expand), an old one with knowledge
    distillation on the known samples (kd), or the newest with cross-entropy alone (head_ce)."""

    frozen_trunk = True
    config_fields = DYNAMICNN_FIELDS

    def choose(self, ctx: TaskContext, before: Before) -> str:  # pragma: no cover - the interface
        """'expand', 'kd' or 'head_ce' on this task: what the methods of this family differ in."""
        raise NotImplementedError

    def train_task(self, ctx: TaskContext) -> TaskLog:
        cfg, model, y = ctx.cfg, ctx.model, ctx.y
        model.set_trunk_trainable(False)
        feats = trunk_features(model, ctx.task.train_x, ctx.device)
        before = measure_before(model, feats, y, cfg.known_rule, ctx.history)
        before.acc = decision_accuracy(model, ctx.task, cfg, ctx.device, before, ctx.history)
        action = self.choose(ctx, before)
        known, teacher = before.known, None
        if action == "expand":
            head = model.add_head(pick_head(before.head_acc, "best") if cfg.head_init == "copy" else None)
        elif action == "kd":
            head = pick_head(before.head_acc, cfg.kd_head, before.routed)
            teacher = before.logits[head].to(ctx.device)  # the head before training: a frozen copy's outputs
        else:
            head = len(model.heads) - 1
        model.heads.to(ctx.device)

        def loss_fn(out: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
            k = known[idx] if action == "kd" else None
            parts = {"ce": ce_loss(out, y[idx], k, cfg.ce_on)}
            if teacher is not None and cfg.kd_weight > 0:
                parts["kd"] = cfg.kd_weight * kd_loss(out[k], teacher[idx][k], cfg.kd_temperature)
            return parts

        epochs = ctx.fit(model.heads[head], loss_fn, feats, desc=f"task {ctx.t} {action}")
        return ctx.log(action, epochs, head=head, trunk_changed=False, acc_before=before.acc,
                       head_acc=before.head_acc, known_fraction=before.known.float().mean().item(),
                       routed=before.routed)
