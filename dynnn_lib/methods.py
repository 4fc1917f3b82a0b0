"""What happens on one task: full training, fine-tuning, expansion, or knowledge distillation.

Task 0 trains the trunk and the first head.  Afterwards (all methods but ``finetune``) the trunk is
frozen, so trunk features of the task's images are computed once and every later step trains one head
on them; the frozen teacher's logits are computed once too.

The pieces, each a small function:

* :func:`measure_before` - the old model's accuracy on the new task before training (overall and per
  head) and the "known" mask (samples the old model already classifies right); the old model's
  prediction is formed by ``known_rule`` (default: the router, see routing.py);
* :func:`decide` - expand, distil or fine-tune on this task;
* :func:`kd_loss` - distillation between a frozen copy of a head and the head being trained;
* :func:`train_task` - put them together and fit.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import RunConfig
from .data.stream import Task, decision_set
from .errors import TrainingDiverged
from .evaluation import EVAL_BATCH, head_logits, to_float, trunk_features  # noqa: F401 (re-exported)
from .model import DynamicNet
from .routing import DomainStats, combine, domain_features, routed_heads


def task_seed(seed: int, task: int) -> int:
    """Every task draws its randomness from (seed, task) alone, so a resumed run is bit-identical."""
    return seed * 7919 + task * 104_729 + 17


@dataclass
class TaskLog:
    task: int
    action: str                      # full | finetune | expand | kd | head_ce
    head: int                        # the head that was trained
    n_heads: int
    acc_before: float | None = None  # old model on this task's decision data (validation if any, else train), before training
    head_acc: list[float] = field(default_factory=list)
    known_fraction: float | None = None
    routed: list[float] = field(default_factory=list)  # share of the task's images the router sent to each head
    train_s: float = 0.0
    final_loss: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Before:
    acc: float
    head_acc: list[float]
    known: torch.Tensor  # bool (N,)
    routed: list[float] = field(default_factory=list)  # fraction of the task's images the router sends to each head
    logits: torch.Tensor | None = None  # (n_heads, N, C) every head on the task's images: the KD teacher's outputs


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
                  routed=share.tolist(), logits=logits)


def decision_accuracy(model: DynamicNet, task: Task, cfg: RunConfig, device: torch.device, before: Before,
                      history: History | None = None) -> float:
    """The old model's accuracy that :func:`decide` compares with ``expand_threshold``: measured like
    ``before.acc`` but on the task's decision set (data/stream.decision_set: its validation split when the layout
    has one and ``data.decide_on="validation"``). Without a validation split it is ``before.acc`` itself (the
    training data), so the embedded stream is unchanged."""
    x, y = decision_set(task, cfg.data)
    if x is task.train_x:
        return before.acc
    return measure_before(model, trunk_features(model, x, device), y, cfg.known_rule, history).acc


def decide(cfg: RunConfig, t: int, before: Before) -> str:
    """'expand', 'kd' or 'head_ce' for incremental task t >= 1 of a frozen-trunk method."""
    if t in cfg.expand_at or (cfg.expand_threshold is not None and before.acc < cfg.expand_threshold):
        return "expand"
    return "kd" if cfg.method in ("kd", "combined") else "head_ce"


def pick_head(head_acc: list[float], which: str, routed: list[float] | None = None) -> int:
    """Index of the best- or worst-scoring head, or the head most of the task routes to (ties: the newest)."""
    score = torch.tensor(routed if which == "routed" and routed else head_acc)
    if which == "worst":
        score = -score
    best = score.max()
    return int(torch.nonzero(score == best).max())


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton-style distillation: T^2 * KL(softmax(teacher/T) || softmax(student/T)), mean over samples."""
    if len(student) == 0:
        return student.sum() * 0.0
    t = temperature
    return F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1), reduction="batchmean",
                    log_target=True) * (t * t)


def ce_loss(logits: torch.Tensor, y: torch.Tensor, known: torch.Tensor | None, ce_on: str) -> torch.Tensor:
    if ce_on == "unknown" and known is not None:
        mask = ~known
        if not mask.any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits[mask], y[mask])
    return F.cross_entropy(logits, y)


def train_task(model: DynamicNet, task: Task, cfg: RunConfig, device: torch.device, progress: bool = False,
               history: History | None = None) -> TaskLog:
    """Train `model` on `task` according to `cfg`; returns what was done (``log.head`` is then responsible
    for this task)."""
    t = task.index
    torch.manual_seed(task_seed(cfg.seed, t))
    gen = torch.Generator().manual_seed(task_seed(cfg.seed, t))
    y = task.train_y.to(device)
    start = time.perf_counter()

    if t == 0 or cfg.method == "finetune":
        log = TaskLog(task=t, action="full" if t == 0 else "finetune", head=0, n_heads=len(model.heads))
        if t > 0:
            before = measure_before(model, trunk_features(model, task.train_x, device), task.train_y, cfg.known_rule,
                                    history)
            before.acc = decision_accuracy(model, task, cfg, device, before, history)
            log.acc_before, log.head_acc = before.acc, before.head_acc
        model.set_trunk_trainable(True)
        net = nn.Sequential(model.trunk, model.heads[0])
        log.final_loss = fit(
            net, lambda out, idx: F.cross_entropy(out, y[idx]), task.train_x, cfg,
            epochs=cfg.base_epochs if t == 0 else cfg.inc_epochs,
            lr=cfg.base_lr if t == 0 else cfg.incremental_lr(),
            milestones=cfg.base_milestones if t == 0 else cfg.inc_milestones,
            augment=t == 0, gen=gen, device=device, progress=progress, desc=f"task {t} {log.action}", task=t)
    else:
        model.set_trunk_trainable(False)
        feats = trunk_features(model, task.train_x, device)
        before = measure_before(model, feats, y, cfg.known_rule, history)
        before.acc = decision_accuracy(model, task, cfg, device, before, history)  # known mask stays on train
        action = decide(cfg, t, before)
        known = before.known
        teacher_logits = None
        if action == "expand":
            init = pick_head(before.head_acc, "best") if cfg.head_init == "copy" else None
            head = model.add_head(init)
        elif action == "kd":
            head = pick_head(before.head_acc, cfg.kd_head, before.routed)
            teacher_logits = before.logits[head].to(device)  # the head before training: a frozen copy's outputs
        else:
            head = len(model.heads) - 1
        model.heads.to(device)

        def loss_fn(out: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            k = known[idx] if action == "kd" else None
            loss = ce_loss(out, y[idx], k, cfg.ce_on)
            if teacher_logits is not None and cfg.kd_weight > 0:
                loss = loss + cfg.kd_weight * kd_loss(out[k], teacher_logits[idx][k], cfg.kd_temperature)
            return loss

        log = TaskLog(task=t, action=action, head=head, n_heads=len(model.heads), acc_before=before.acc,
                      head_acc=before.head_acc, known_fraction=before.known.float().mean().item(),
                      routed=before.routed)
        log.final_loss = fit(model.heads[head], loss_fn, feats, cfg, epochs=cfg.inc_epochs, lr=cfg.incremental_lr(),
                              milestones=cfg.inc_milestones, augment=False, gen=gen, device=device,
                              progress=progress, desc=f"task {t} {action}", task=t)
    log.n_heads = len(model.heads)
    log.train_s = time.perf_counter() - start
    return log


def fit(net: nn.Module, loss_fn, inputs: torch.Tensor, cfg: RunConfig, *, epochs: int, lr: float,
         milestones: tuple[int, ...], augment: bool, gen: torch.Generator, device: torch.device, progress: bool,
         desc: str, task: int) -> float:
    """Adam + step decay over `epochs`; inputs are uint8 images or precomputed float features."""
    from tqdm.auto import tqdm

    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=cfg.lr_gamma)
    n = len(inputs)
    loss_value = float("nan")
    net.train()
    for epoch in tqdm(range(epochs), desc=desc, leave=False, disable=not progress, unit="epoch"):
        perm = torch.randperm(n, generator=gen)
        total, count = 0.0, 0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            xb = to_float(inputs[idx].to(device)).contiguous(memory_format=torch.channels_last)
            if augment:  # horizontal flip of a random half: the base task gets more augmentation
                flip = torch.rand(len(idx), generator=gen) < 0.5
                xb[flip.to(device)] = xb[flip.to(device)].flip(-1)
            loss = loss_fn(net(xb), idx.to(device))
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"task {task}, epoch {epoch}: the loss became {loss.item()}; lower the learning rate "
                    f"(now {lr:g}) or check the data for NaN/inf values")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
        sched.step()
        loss_value = total / max(count, 1)
    net.eval()
    return loss_value
