"""The one training loop every method uses, and the losses they share.

:func:`fit` runs Adam with step decay over a tensor of inputs (uint8 images or precomputed trunk features). The
loss function gets the network's output and the batch indices and returns a tensor, or a dict of named parts
(``ce``, ``kd``, ``reg``...) that are summed; every part is logged per epoch with the learning rate and the
time, so a researcher can plot what each task's training did (``TaskLog.epochs``).
"""
from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import TrainingDiverged
from ..evaluation import to_float

Loss = Callable[[torch.Tensor, torch.Tensor], "torch.Tensor | dict[str, torch.Tensor]"]


def task_seed(seed: int, task: int) -> int:
    """Every task draws its randomness from (seed, task) alone, so a resumed run is bit-identical."""
    return seed * 7919 + task * 104_729 + 17


class Concat:
    """Several input tensors indexed as one (joint training, replay) without copying them into memory."""

    def __init__(self, parts: Sequence[torch.Tensor]):
        self.parts = list(parts)
        self.offsets = torch.tensor([0] + [len(p) for p in self.parts]).cumsum(0)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        which = torch.bucketize(idx, self.offsets[1:], right=True)
        out = torch.empty((len(idx), *self.parts[0].shape[1:]), dtype=self.parts[0].dtype)
        for k in which.unique().tolist():
            sel = which == k
            out[sel] = self.parts[k][idx[sel] - self.offsets[k]]
        return out


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton-style distillation: T^2 * KL(softmax(teacher/T) || softmax(student/T)), mean over samples."""
    if len(student) == 0:
        return student.sum() * 0.0
    t = temperature
    return F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1), reduction="batchmean",
                    log_target=True) * (t * t)


def ce_loss(logits: torch.Tensor, y: torch.Tensor, known: torch.Tensor | None = None, ce_on: str = "all") -> torch.Tensor:
    """Cross-entropy on all samples, or (ce_on="unknown") only on those the old model got wrong."""
    if ce_on == "unknown" and known is not None:
        mask = ~known
        if not mask.any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits[mask], y[mask])
    return F.cross_entropy(logits, y)


def fit(net: nn.Module, loss_fn: Loss, inputs, *, epochs: int, lr: float, milestones: Sequence[int], gamma: float,
        batch_size: int, augment: bool, gen: torch.Generator, device: torch.device, progress: bool = False,
        desc: str = "", task: int = 0) -> list[dict]:
    """Adam + step decay over `epochs`; returns one log entry per epoch: loss, its parts, lr, seconds."""
    from tqdm.auto import tqdm

    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=gamma)
    n = len(inputs)
    epochs_log: list[dict] = []
    net.train()
    for epoch in tqdm(range(epochs), desc=desc, leave=False, disable=not progress, unit="epoch"):
        start, epoch_lr = time.perf_counter(), opt.param_groups[0]["lr"]
        sums: dict[str, torch.Tensor] = {}
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            xb = to_float(inputs[idx].to(device)).contiguous(memory_format=torch.channels_last)
            if augment:  # horizontal flip of a random half: the base task gets more augmentation
                flip = torch.rand(len(idx), generator=gen) < 0.5
                xb[flip.to(device)] = xb[flip.to(device)].flip(-1)
            out = loss_fn(net(xb), idx.to(device))
            parts = out if isinstance(out, dict) else {"loss": out}
            loss = None
            for value in parts.values():
                loss = value if loss is None else loss + value
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for name, value in {"loss": loss, **parts}.items():  # summed without a sync per step
                sums[name] = sums.get(name, 0.0) + value.detach().double() * len(idx)
        sched.step()
        entry = {"epoch": epoch, "lr": epoch_lr, **{k: (v / max(n, 1)).item() for k, v in sums.items()},
                 "time_s": time.perf_counter() - start}
        if not math.isfinite(entry["loss"]):
            raise TrainingDiverged(f"task {task}, epoch {epoch}: the loss became {entry['loss']}; lower the learning "
                                   f"rate (now {lr:g}) or check the data for NaN/inf values")
        epochs_log.append(entry)
    net.eval()
    return epochs_log
