"""A stream is an ordered list of tasks, each with uint8 train/test (and, when the layout has one, validation)
images and labels.

The embedded synthetic stream lives in memory (a cached ``.pt`` file); real data are memory-mapped uint8
arrays decoded once into an on-disk cache (data/images.py), so a stream larger than memory reads only the
pages a batch touches.  Both are plain ``torch.Tensor`` objects: training and evaluation index them the same way.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dynnn_lib.core.config import DataConfig
from dynnn_lib.core.errors import DataError


@dataclass
class Task:
    index: int
    name: str
    train_x: torch.Tensor  # uint8 (N, 3, H, W)
    train_y: torch.Tensor  # int64 (N,)
    test_x: torch.Tensor
    test_y: torch.Tensor
    factors: dict[str, str] = field(default_factory=dict)
    val_x: torch.Tensor | None = None  # the layout's validation split, None when it has none (synthetic)
    val_y: torch.Tensor | None = None


@dataclass
class Stream:
    tasks: list[Task]
    n_classes: int
    class_names: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]


def default_cache_dir() -> Path:
    return Path(os.environ.get("DYNNN_CACHE", Path.home() / ".cache" / "dynnn"))


def decision_set(task: Task, cfg: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels on which the old model's accuracy for the expansion decision is measured.

    ``cfg.decide_on == "validation"`` (default): the task's validation split when the layout has one. The
    sources do not say which split Hikvision measured it on [NF]; the challenge rules allow using validation data
    and forbid test data, so validation is the honest choice when it exists. Otherwise (no validation split, or
    ``decide_on="train"``): the task's training images, as before this option existed.
    """
    if cfg.decide_on == "validation" and task.val_x is not None and len(task.val_x):
        return task.val_x, task.val_y
    return task.train_x, task.train_y


def check_labels(y: torch.Tensor, n_classes: int, where: str) -> None:
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise DataError(f"{where}: label {int(y.max()) if int(y.max()) >= n_classes else int(y.min())} is out of "
                        f"range 0..{n_classes - 1}; labels must be class indices")
