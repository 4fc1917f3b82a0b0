"""A stream is an ordered list of tasks, each with uint8 train/test (and, when the layout has one, validation)
images and labels.

The embedded synthetic stream lives in memory (a cached ``.pt`` file); real data are memory-mapped uint8
arrays decoded once into an on-disk cache (data/openloris.py), so a stream larger than memory reads only the
pages a batch touches.  Both are plain ``torch.Tensor`` objects: training and evaluation index them the same way.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import DataConfig
from ..errors import DataError
from ..store import atomic_torch_save
from . import synthetic


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


def load_stream(cfg: DataConfig) -> Stream:
    """Load (or generate and cache) the stream a DataConfig describes."""
    if cfg.source == "synthetic":
        stream = _synthetic_stream(cfg)
    else:
        from .openloris import load_openloris
        stream = load_openloris(cfg)
    if cfg.n_tasks is not None:
        if cfg.n_tasks > len(stream):
            raise DataError(f"data.n_tasks={cfg.n_tasks} but the stream has only {len(stream)} tasks; lower n_tasks")
        stream.tasks = stream.tasks[: cfg.n_tasks]
    if len(stream) < 2:
        raise DataError(f"the stream has {len(stream)} task; incremental learning needs at least 2 tasks")
    return stream


def _synthetic_stream(cfg: DataConfig) -> Stream:
    from .streams import load_spec

    spec = load_spec(cfg.stream or "round1")
    tasks_spec = spec.tasks[: cfg.n_tasks or len(spec)]
    knobs = synthetic.Knobs(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.generator.items()})
    key_body = {"v": synthetic.GENERATOR_VERSION, "spec": [dict(t.factors) for t in tasks_spec],
                "n_classes": cfg.n_classes, "size": cfg.image_size, "train": cfg.train_per_class,
                "test": cfg.test_per_class, "seed": cfg.data_seed}
    if any(t.segment for t in tasks_spec):  # new fields enter the key only when they act: round1's key stays
        key_body["segments"] = [t.segment for t in tasks_spec]
    if knobs != synthetic.DEFAULT_KNOBS:
        key_body["knobs"] = dataclasses.asdict(knobs)
    key = hashlib.sha256(json.dumps(key_body, sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    path = cache / f"synthetic-{key}.pt"
    tensors = None
    if path.exists():
        try:
            tensors = torch.load(path, weights_only=True)
        except Exception:  # a damaged cache file is regenerated, never trusted
            tensors = None
    if tensors is None or len(tensors) != len(tasks_spec):
        tensors = []
        for t, ts in enumerate(tasks_spec):
            tx, ty = synthetic.generate_task(ts.factors, cfg.n_classes, cfg.train_per_class, cfg.image_size,
                                             cfg.data_seed, salt=2 * t, knobs=knobs, segment=ts.segment)
            vx, vy = synthetic.generate_task(ts.factors, cfg.n_classes, cfg.test_per_class, cfg.image_size,
                                             cfg.data_seed, salt=2 * t + 1, knobs=knobs, segment=ts.segment)
            tensors.append({"train_x": tx, "train_y": ty, "test_x": vx, "test_y": vy})
        try:
            atomic_torch_save(tensors, path)
        except OSError:
            pass  # a read-only or full cache folder only costs regeneration next time
    tasks = [Task(index=t, name=ts.name, factors=synthetic.full_factors(ts.factors), **tens)
             for t, (ts, tens) in enumerate(zip(tasks_spec, tensors))]
    names = [f"object {c}" for c in range(cfg.n_classes)]
    return Stream(tasks=tasks, n_classes=cfg.n_classes, class_names=names, source="synthetic")


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
