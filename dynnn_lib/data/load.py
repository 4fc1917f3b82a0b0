"""Load the stream a DataConfig describes: the embedded benchmark (generated once, cached) or a real dataset on disk
(openloris.py), cut to ``data.n_tasks``."""
from __future__ import annotations

import dataclasses
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
from dynnn_lib.core.streams import DEFAULT_STREAM, load_spec


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
    spec = load_spec(cfg.stream or DEFAULT_STREAM)
    tasks_spec = spec.tasks[: cfg.n_tasks or len(spec)]
    knobs = spec.knobs(cfg.generator)  # the spec's knobs under data.generator's (validated by DataConfig)
    from dynnn_lib.core.fingerprint import DATA_ENTRY, code_fingerprint

    key_body = {"v": synthetic.GENERATOR_VERSION, "code": code_fingerprint(DATA_ENTRY),  # the generator's code
                "spec": [dict(t.factors) for t in tasks_spec],
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
