"""The one training loop every method uses, and the losses they share.

:func:`fit` runs Adam with step decay over :class:`Samples`: the inputs (uint8 images, precomputed trunk features
or a :class:`Concat` of several), their labels and whatever per-sample tensors the method adds (the known mask,
a teacher's outputs), indexed together. The loss function gets the network's output and the :class:`Batch` it
was computed on (``batch.x``, ``batch.y``, ``batch.idx`` and each added tensor by name: ``batch.teacher``), so a
method keeps no index-aligned tensor in a closure; a sampler that adds rows (replay's memory) adds them to the
batch itself (:meth:`Samples.take`). The loss returns a tensor, or a dict of named parts (``ce``, ``kd``,
``reg``...) that are summed; every part is logged per epoch with the learning rate and the time, so a researcher
can plot what each task's training did (``TaskLog.epochs``). A plain tensor of inputs is still accepted: its loss
then gets ``(output, indices)``, the form methods were written in before batches.

Adam's state across tasks (``RunConfig.optimizer_state``): ``"reset"`` (the default) starts every task with a
fresh Adam (no moments, step 0), as the paper's per-task schedule reads ("inc lr=0.003 @[50, 90]": a schedule of
its own per task) and as FACIL (``Inc_Learning_Appr.train_loop`` builds a new optimiser per task) and Mammoth
(``get_scheduler(..., reload_optim=True)``, "at least ONCE every task") do. ``"keep"`` carries each parameter's
moments and step count into the next task, as Avalanche 0.6's strategies do by default (its optimiser is reset
only before the first experience); the learning rate and its schedule start afresh either way.
:class:`OptimizerMemory` holds that state by parameter name, so it survives new heads and checkpoints.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from dynnn_lib.core.errors import TrainingDiverged
from dynnn_lib.evaluation.outputs import to_float

Loss = Callable[[torch.Tensor, "Batch"], "torch.Tensor | dict[str, torch.Tensor]"]


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


@dataclass
class Batch:
    """What a loss gets beside the output: the inputs as the network saw them (after augmentation), their labels,
    their positions in the task's data (``idx``; rows a sampler added, such as replay's memory, come after them)
    and every per-sample tensor the method added to its :class:`Samples`, by name (``batch.known``), all on the
    training device, in the batch's order."""

    x: torch.Tensor
    y: torch.Tensor | None
    idx: torch.Tensor
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def __getattr__(self, name: str) -> torch.Tensor:
        extra = self.__dict__.get("extra") or {}
        if name in extra:
            return extra[name]
        raise AttributeError(f"the batch has no {name!r}; it has x, y, idx{''.join(', ' + k for k in extra)} "
                             f"(add per-sample tensors as Samples(x, y, {name}=...))")


class Samples:
    """What :func:`fit` trains on: inputs, their labels (None: the loss needs none) and named per-sample tensors
    (``Samples(feats, y, known=mask, teacher=logits)``), indexed together batch by batch."""

    def __init__(self, x: Any, y: torch.Tensor | None = None, **extra: torch.Tensor):
        for name, value in (("y", y), *extra.items()):
            if value is not None and len(value) != len(x):
                raise ValueError(f"Samples: {name} has {len(value)} rows, the inputs {len(x)}; give one per input")
        self.x, self.y, self.extra = x, y, extra

    def __len__(self) -> int:
        return len(self.x)

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
        """The rows `idx`: inputs, labels and added tensors (a subclass may add rows: replay's memory)."""
        return (self.x[idx], None if self.y is None else self.y[idx],
                {k: v[idx] for k, v in self.extra.items()})


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton-style distillation: T^2 * KL(softmax(teacher/T) || softmax(student/T)), mean over samples."""
    if len(student) == 0:
        return student.sum() * 0.0
    t = temperature
    return F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1), reduction="batchmean",
                    log_target=True) * (t * t)


def photometric_jitter(x: torch.Tensor, strength: float, gen: torch.Generator) -> torch.Tensor:
    """Per image: brightness x (1 +- s), contrast about the image's mean x (1 +- s), each colour channel
    x (1 +- s/2), uniform draws, clamped to [0, 1]. The paper trains its base model with "more data augmentation"
    without naming the kinds; photometric jitter (brightness, contrast, colour) is its natural reading for a stream
    whose domains are lighting, occlusion, size and clutter (RunConfig.base_photometric)."""
    n = len(x)
    u = (torch.rand(n, 5, generator=gen) * 2 - 1).to(x.device)
    brightness = (1 + strength * u[:, 0]).view(n, 1, 1, 1)
    contrast = (1 + strength * u[:, 1]).view(n, 1, 1, 1)
    colour = (1 + strength / 2 * u[:, 2:5]).view(n, 3, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (((x - mean) * contrast + mean) * brightness * colour).clamp(0, 1)


class OptimizerMemory:
    """Adam's per-parameter state (moments, step) kept across tasks, by the parameter's name in `model`
    (``optimizer_state="keep"``); saved in checkpoints with :meth:`state_dict`."""

    def __init__(self, model: nn.Module, state: dict[str, dict] | None = None):
        self.model, self.state = model, dict(state or {})

    def _names(self) -> dict[nn.Parameter, str]:
        return {p: n for n, p in self.model.named_parameters()}

    def restore(self, opt: torch.optim.Optimizer) -> None:
        names = self._names()
        for group in opt.param_groups:
            for p in group["params"]:
                saved = self.state.get(names.get(p, ""))
                if saved is not None:
                    opt.state[p] = {k: v.clone().to(p.device) for k, v in saved.items()}

    def store(self, opt: torch.optim.Optimizer) -> None:
        names = self._names()
        for p, st in opt.state.items():
            if p in names:
                self.state[names[p]] = {k: v.detach().cpu().clone() for k, v in st.items()}

    def state_dict(self) -> dict[str, dict]:
        return self.state


def fit(net: nn.Module, loss_fn: Loss, data: "Samples | torch.Tensor", *, epochs: int, lr: float, milestones: Sequence[int], gamma: float,
        batch_size: int, augment: bool, gen: torch.Generator, device: torch.device, progress: bool = False,
        desc: str = "", task: int = 0, memory: OptimizerMemory | None = None, photometric: float = 0.0) -> list[dict]:
    """Adam + step decay over `epochs`; returns one log entry per epoch: loss, its parts, lr, seconds.
    `loss_fn(output, batch)` gets each :class:`Batch` of `data` (:class:`Samples`); given plain inputs instead (a
    tensor or a Concat), it gets ``(output, indices)`` as methods written before batches expect.
    With `memory`, Adam starts from the state it stored at the end of the previous task and stores its own.
    With `augment`, a random half of each batch is flipped and, when `photometric` > 0, every image gets a random
    brightness, contrast and colour change of that strength (:func:`photometric_jitter`)."""
    from tqdm.auto import tqdm

    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    if memory is not None:
        memory.restore(opt)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=gamma)
    legacy = not isinstance(data, Samples)
    samples = Samples(data) if legacy else data
    n = len(samples)
    epochs_log: list[dict] = []
    net.train()
    for epoch in tqdm(range(epochs), desc=desc, leave=False, disable=not progress, unit="epoch"):
        start, epoch_lr = time.perf_counter(), opt.param_groups[0]["lr"]
        sums: dict[str, torch.Tensor] = {}
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            x, y, extra = samples.take(idx)
            xb = to_float(x.to(device)).contiguous(memory_format=torch.channels_last)
            if augment:  # horizontal flip of a random half: the base task gets more augmentation
                flip = torch.rand(len(idx), generator=gen) < 0.5
                xb[flip.to(device)] = xb[flip.to(device)].flip(-1)
                if photometric > 0:
                    xb = photometric_jitter(xb, photometric, gen)
            if legacy:
                out = loss_fn(net(xb), idx.to(device))
            else:
                batch = Batch(xb, None if y is None else y.to(device), idx.to(device),
                              {k: v.to(device) for k, v in extra.items()})
                out = loss_fn(net(xb), batch)
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
    if memory is not None:
        memory.store(opt)
    net.eval()
    return epochs_log
