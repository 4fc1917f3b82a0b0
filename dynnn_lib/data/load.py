"""Load the stream a DataConfig describes: the embedded benchmark (generated once, cached) or a real dataset on disk
(openloris.py), cut to ``data.n_tasks``."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from dynnn_lib.core.config import DataConfig
from dynnn_lib.core.errors import DataError
from dynnn_lib.core.store import atomic_torch_save
from dynnn_lib.data import synthetic
from dynnn_lib.data.openloris import load_openloris
from dynnn_lib.data.stream import Stream, Task, default_cache_dir


def load_stream(cfg: DataConfig) -> Stream:
    """Load (or generate and cache) the stream a DataConfig describes."""
    if cfg.source == "synthetic":
        stream = _synthetic_stream(cfg)
    else:
        stream = load_openloris(cfg)
    if cfg.n_tasks is not None:
        if cfg.n_tasks > len(stream):
            raise DataError(f"data.n_tasks={cfg.n_tasks} but the stream has only {len(stream)} tasks; lower n_tasks")
        stream.tasks = stream.tasks[: cfg.n_tasks]
    if len(stream) < 2:
        raise DataError(f"the stream has {len(stream)} task; incremental learning needs at least 2 tasks")
    return stream


def _synthetic_stream(cfg: DataConfig) -> Stream:
    spec = synthetic.ROUND1_STREAM[: cfg.n_tasks or len(synthetic.ROUND1_STREAM)]
    key_src = json.dumps({"v": synthetic.GENERATOR_VERSION, "spec": spec, "n_classes": cfg.n_classes,
                          "size": cfg.image_size, "train": cfg.train_per_class, "test": cfg.test_per_class,
                          "seed": cfg.data_seed}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    path = cache / f"synthetic-{key}.pt"
    tensors = None
    if path.exists():
        try:
            tensors = torch.load(path, weights_only=True)
        except Exception:  # a damaged cache file is regenerated, never trusted
            tensors = None
    if tensors is None or len(tensors) != len(spec):
        tensors = []
        for t, factors in enumerate(spec):
            tx, ty = synthetic.generate_task(factors, cfg.n_classes, cfg.train_per_class, cfg.image_size,
                                             cfg.data_seed, salt=2 * t)
            vx, vy = synthetic.generate_task(factors, cfg.n_classes, cfg.test_per_class, cfg.image_size,
                                             cfg.data_seed, salt=2 * t + 1)
            tensors.append({"train_x": tx, "train_y": ty, "test_x": vx, "test_y": vy})
        try:
            atomic_torch_save(tensors, path)
        except OSError:
            pass  # a read-only or full cache folder only costs regeneration next time
    tasks = []
    for t, (factors, tens) in enumerate(zip(spec, tensors)):
        full = synthetic.full_factors(factors)
        tasks.append(Task(index=t, name=f"task {t}: " + synthetic.describe(factors), factors=full, **tens))
    names = [f"object {c}" for c in range(cfg.n_classes)]
    return Stream(tasks=tasks, n_classes=cfg.n_classes, class_names=names, source="synthetic")
