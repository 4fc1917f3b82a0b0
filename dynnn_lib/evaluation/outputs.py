"""Test-set outputs stored per run, and accuracy matrices computed from them under any head rule.

After each task the run records, for every test image of every task: each head's logits and the image's
domain features (see :mod:`dynnn_lib.evaluation.routing`), plus which head is responsible for each task seen so far and
each task's domain statistics.  A head that did not change (frozen trunk, other head trained) is not
evaluated again: its logits are shared between rows.  :meth:`Outputs.score` turns these into the accuracy
matrix under a head rule and the routing accuracy (image -> the head responsible for its task), in
milliseconds and without the model, so test-time choices never retrain.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from dynnn_lib.evaluation.routing import (ROUTER_SHRINKAGE, DomainStats, apply_rule, combine, domain_features,
                                          get_rule, routed_heads)

EVAL_BATCH = 1024


def to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


@torch.inference_mode()
def trunk_features(model, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    model.eval()
    out = [model.trunk(to_float(x[i:i + EVAL_BATCH].to(device)).contiguous(memory_format=torch.channels_last))
           for i in range(0, len(x), EVAL_BATCH)]
    return torch.cat(out) if out else torch.empty(0)


@torch.inference_mode()
def head_logits(head: torch.nn.Module, feats: torch.Tensor) -> torch.Tensor:
    head.eval()
    return torch.cat([head(feats[i:i + EVAL_BATCH]) for i in range(0, len(feats), EVAL_BATCH)]).float().cpu()


class ConcatImages:
    """The test images of all tasks, read in slices without concatenating them in memory.

    ``x[i:j]`` returns exactly the rows ``torch.cat(parts)[i:j]`` would (so batches, and hence results, are
    unchanged), but only those rows are read: with memory-mapped real data the whole test stream never has to fit
    in memory at once.
    """

    def __init__(self, parts: Sequence[torch.Tensor]):
        self.parts = list(parts)
        self.starts = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, sl: slice) -> torch.Tensor:
        start, stop, step = sl.indices(len(self))
        assert step == 1, "ConcatImages supports contiguous slices only"
        pieces = []
        for k, p in enumerate(self.parts):
            lo, hi = max(start, self.starts[k]), min(stop, self.starts[k + 1])
            if lo < hi:
                pieces.append(p[lo - self.starts[k]:hi - self.starts[k]])
        if len(pieces) == 1:
            return pieces[0]
        return torch.cat(pieces) if pieces else self.parts[0][:0]


@dataclass
class Outputs:
    test_task: torch.Tensor                  # (N,) task of each test image (all tasks concatenated)
    test_y: torch.Tensor                     # (N,) labels
    logits: list[torch.Tensor] = field(default_factory=list)    # table of (N, C): one entry per head version
    features: list[torch.Tensor] = field(default_factory=list)  # table of (N, D): one entry per trunk version
    rows: list[dict] = field(default_factory=list)  # per row: {"heads": [logits idx], "features": idx, "task_heads": [...]}
    domains: list[DomainStats] = field(default_factory=list)    # per trained task
    _routed: dict = field(default_factory=dict, repr=False, compare=False)  # (row, shrinkage) -> (N,) routed head

    @property
    def n_tasks(self) -> int:
        return int(self.test_task.max()) + 1 if len(self.test_task) else 0

    # ------------------------------------------------------------------ scoring
    def score(self, rule: str, shrinkage: float = ROUTER_SHRINKAGE) -> np.ndarray:
        """N x N accuracy matrix under the registered head rule `rule`, built in or a plugin's (NaN rows for tasks
        never reached); a rule with ``needs_label`` is told the head that learnt each seen task."""
        how = get_rule(rule)
        n = self.n_tasks
        out = np.full((n, n), np.nan)
        for i, row in enumerate(self.rows):
            logits = torch.stack([self.logits[k] for k in row["heads"]])
            routed = self.routed(i, shrinkage) if how.reads_router else None
            for j in range(n):
                idx = self.test_task == j
                responsible = row["task_heads"][j] if j < len(row["task_heads"]) else None
                pred = apply_rule(how, logits[:, idx], None if routed is None else routed[idx], responsible)
                out[i, j] = (pred == self.test_y[idx]).double().mean().item()
        return out

    def routing(self, shrinkage: float = ROUTER_SHRINKAGE) -> np.ndarray:
        """R[i, j], j <= i: fraction of task j's test images the router sends to the head responsible for j."""
        n = self.n_tasks
        out = np.full((n, n), np.nan)
        for i, row in enumerate(self.rows):
            routed = self.routed(i, shrinkage)
            for j in range(i + 1):
                out[i, j] = (routed[self.test_task == j] == row["task_heads"][j]).double().mean().item()
        return out

    def routed(self, i: int, shrinkage: float = ROUTER_SHRINKAGE) -> torch.Tensor:
        """(N,) the head the router sends each test image to after task i (computed once per row and shrinkage:
        the router, the oracle's unseen tasks and the routing accuracy all read it)."""
        if (i, shrinkage) not in self._routed:
            row = self.rows[i]
            self._routed[i, shrinkage] = routed_heads(row["task_heads"], self.domains, self.features[row["features"]],
                                                      shrinkage)
        return self._routed[i, shrinkage]

    # ------------------------------------------------------------------ storage
    def state(self) -> dict:
        return {"test_task": self.test_task, "test_y": self.test_y, "logits": self.logits, "features": self.features,
                "rows": self.rows, "domains": [d.to_dict() for d in self.domains]}

    @classmethod
    def from_state(cls, s: dict) -> "Outputs":
        return cls(test_task=s["test_task"], test_y=s["test_y"], logits=list(s["logits"]), features=list(s["features"]),
                   rows=[dict(r) for r in s["rows"]], domains=[DomainStats.from_dict(d) for d in s["domains"]])


class Evaluator:
    """Fills an :class:`Outputs` row by row during a run, re-evaluating only what changed."""

    def __init__(self, test_sets: Sequence[tuple[torch.Tensor, torch.Tensor]], device: torch.device,
                 outputs: Outputs | None = None):
        self.test_x = ConcatImages([x for x, _ in test_sets])  # read batch by batch, never all in memory
        self.device = device
        self.outputs = outputs or Outputs(
            test_task=torch.cat([torch.full((len(y),), j, dtype=torch.long) for j, (_, y) in enumerate(test_sets)]),
            test_y=torch.cat([y for _, y in test_sets]).long())
        self._trunk_out: torch.Tensor | None = None  # trunk activations of all test images (current trunk)
        self._head_entry: dict[int, int] = {}          # head index -> its current logits entry

    def resume(self, outputs: Outputs) -> None:
        """Continue from stored outputs (a checkpoint or a shared prefix): the heads' latest entries are known, the
        trunk's activations are recomputed when first needed, so the rows that follow are stored exactly as in an
        uninterrupted run."""
        self.outputs = outputs
        self._trunk_out = None
        self._head_entry = dict(enumerate(outputs.rows[-1]["heads"])) if outputs.rows else {}

    def add_row(self, model, task_heads: Sequence[int], changed_heads: Sequence[int], trunk_changed: bool) -> None:
        out = self.outputs
        if trunk_changed or not out.features:
            self._trunk_out = trunk_features(model, self.test_x, self.device)
            out.features.append(domain_features(self._trunk_out).float().cpu())
            self._head_entry = {}
        elif self._trunk_out is None:  # resumed with the trunk unchanged: its activations, not a new entry
            self._trunk_out = trunk_features(model, self.test_x, self.device)
        stale = set(changed_heads) | {h for h in range(len(model.heads)) if h not in self._head_entry}
        for h in sorted(stale):
            out.logits.append(head_logits(model.heads[h], self._trunk_out))
            self._head_entry[h] = len(out.logits) - 1
        out.rows.append({"heads": [self._head_entry[h] for h in range(len(model.heads))],
                         "features": len(out.features) - 1, "task_heads": list(task_heads)})

    def add_domain(self, model, train_x: torch.Tensor) -> DomainStats:
        stats = DomainStats.fit(domain_features(trunk_features(model, train_x, self.device)).cpu())
        self.outputs.domains.append(stats)
        return stats


# ------------------------------------------------------------------ the old model on a new task, before training
@dataclass
class Before:
    acc: float
    head_acc: list[float]
    known: torch.Tensor  # bool (N,)
    routed: list[float] = field(default_factory=list)  # fraction of the task's images the router sends to each head
    logits: torch.Tensor | None = None  # (n_heads, N, C) every head on the task's images (a distillation teacher)
    features: torch.Tensor | None = None  # (N, C, H, W) the trunk's output on the task's images


@dataclass
class History:
    """What a task may know about the earlier ones: their domain statistics and the head responsible for each."""

    domains: list[DomainStats] = field(default_factory=list)
    task_heads: list[int] = field(default_factory=list)


def measure_before(model, feats: torch.Tensor, y: torch.Tensor, rule: str = "router",
                   history: History | None = None) -> Before:
    """The old model on the new task's images, before training on it: its accuracy when its prediction is formed
    by head rule `rule` (label-free; evaluation/routing.py), each head's accuracy, the "known" mask (images it gets right)
    and where the router sends them."""
    logits = torch.stack([head_logits(h, feats) for h in model.heads])
    yd = y.cpu()
    history = history or History()
    routed = routed_heads(history.task_heads or [len(model.heads) - 1], history.domains, domain_features(feats).cpu())
    known = combine(rule, logits, routed if rule == "router" else None) == yd
    head_acc = [(l.argmax(-1) == yd).float().mean().item() for l in logits]
    share = torch.bincount(routed, minlength=len(model.heads)).double() / max(len(routed), 1)
    return Before(acc=known.float().mean().item(), head_acc=head_acc, known=known.to(feats.device),
                  routed=share.tolist(), logits=logits, features=feats)


def decision_accuracy(model, task, data_cfg, device: torch.device, before: Before, rule: str = "router",
                      history: History | None = None) -> float:
    """The old model's accuracy a method decides on (DynamicNN: its expansion threshold): measured like
    ``before.acc`` but on the task's decision set (data/stream.decision_set: its validation split when the layout
    has one and ``data.decide_on="validation"``). Without a validation split it is ``before.acc`` itself (the
    training data). The known mask, the teacher and the per-head accuracies stay on the training samples."""
    from dynnn_lib.data.stream import decision_set

    x, y = decision_set(task, data_cfg)
    if x is task.train_x:
        return before.acc
    return measure_before(model, trunk_features(model, x, device), y, rule, history).acc
