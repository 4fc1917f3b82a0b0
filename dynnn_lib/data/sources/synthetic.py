"""``synthetic``: the embedded stand-in, generated (no download), cached as one ``.pt`` file per configuration.

Its parameters: ``stream`` (which generated stream: a preset such as ``round1-calibrated``, the default, or a YAML
file; core/streams.py), ``generator`` (knob values over the stream's own, core/streams.py ``Knobs``), the class
count and split sizes, and ``data_seed`` (which instance of the stand-in). The pixels are made by
data/synthetic.py; the stream's spec is part of the run key (:meth:`stream_spec`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import torch

from dynnn_lib.core.errors import ConfigError
from dynnn_lib.core.store import atomic_torch_save
from dynnn_lib.core.streams import CONJUNCTION, DEFAULT_STREAM, Knobs, TaskSpec, load_spec
from dynnn_lib.data import synthetic
from dynnn_lib.data.source import Source, register
from dynnn_lib.data.stream import Stream, Task, default_cache_dir


def _count(name: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        what = "a positive integer" if least == 1 else f"an integer >= {least}"
        raise ConfigError(f"data.{name}={value!r} must be {what}")


@dataclass(frozen=True)
class Params:
    stream: str | None = None         # None = DEFAULT_STREAM (round1-calibrated); a preset or a YAML file
    generator: Mapping[str, Any] = field(default_factory=dict)  # knob values over the stream's (Knobs)
    n_classes: int = 10               # object classes, shared by every task (data-incremental)
    train_per_class: int = 100        # training images per class and task
    test_per_class: int = 30          # test images per class and task
    data_seed: int = 0                # which instance of the stand-in (its objects and images)

    def __post_init__(self) -> None:
        _count("n_classes", self.n_classes, 1)
        if self.n_classes < 2:
            raise ConfigError("data.n_classes must be at least 2")
        _count("train_per_class", self.train_per_class, 1)
        _count("test_per_class", self.test_per_class, 1)
        if isinstance(self.data_seed, bool) or not isinstance(self.data_seed, int) or self.data_seed < 0:
            raise ConfigError(f"data.data_seed={self.data_seed!r} must be a non-negative integer")
        if not isinstance(self.generator, Mapping):
            raise ConfigError(f"data.generator must be a mapping of knob names to values, got {self.generator!r}")
        object.__setattr__(self, "generator", {k: list(v) if isinstance(v, tuple) else v
                                               for k, v in sorted(self.generator.items())})


def _generate(ts: TaskSpec, t: int, per_class: int, salt: int, size: int, p: Params,
              knobs: Knobs) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of task `t` (`salt`: 2t for its train split, 2t + 1 for its test split), by its composition: a
    conjunction through generate_task exactly as before compositions existed."""
    if ts.composition == CONJUNCTION:
        return synthetic.generate_task(ts.factors, p.n_classes, per_class, size, p.data_seed, salt=salt, knobs=knobs,
                                       segment=ts.segment, task=t)
    x, y, _ = synthetic.generate_mixture(ts.subdirectories(), ts.weights(), p.n_classes, per_class, size,
                                         p.data_seed, salt=salt, knobs=knobs, segment=ts.segment)
    return x, y


@register
class Synthetic(Source):
    """The embedded factor-controlled benchmark, generated (no download)."""

    name = "synthetic"
    Params = Params
    needs_root = False

    @classmethod
    def check(cls, data, params):
        params = replace(params, stream=params.stream or DEFAULT_STREAM)
        load_spec(params.stream).knobs(params.generator)  # a bad preset, file or knob: one line
        return params

    @classmethod
    def declared_tasks(cls, params) -> int:
        return len(load_spec(params.stream or DEFAULT_STREAM))

    @classmethod
    def stream_spec(cls, data) -> dict:
        return load_spec(data.params.get("stream") or DEFAULT_STREAM).to_dict()

    @classmethod
    def base_photometric(cls, data) -> float:
        return load_spec(data.params.get("stream") or DEFAULT_STREAM).base_photometric

    def count_tasks(self) -> int:
        return len(load_spec(self.params.stream or DEFAULT_STREAM))

    def load(self) -> Stream:
        cfg, p = self.data, self.params
        spec = load_spec(p.stream or DEFAULT_STREAM)
        tasks_spec = spec.tasks[: cfg.n_tasks or len(spec)]
        knobs = spec.knobs(p.generator)  # the spec's knobs under data.generator's
        from dynnn_lib.core.fingerprint import DATA_ENTRY, code_fingerprint

        key_body = {"v": synthetic.GENERATOR_VERSION, "code": code_fingerprint(DATA_ENTRY),  # the generator's code
                    "spec": [dict(t.factors) for t in tasks_spec],
                    "n_classes": p.n_classes, "size": cfg.image_size, "train": p.train_per_class,
                    "test": p.test_per_class, "seed": p.data_seed}
        if any(t.segment for t in tasks_spec):  # new fields enter the key only when they act: round1's key stays
            key_body["segments"] = [t.segment for t in tasks_spec]
        if any(t.composition != CONJUNCTION for t in tasks_spec):
            key_body["compositions"] = [[t.composition, list(t.weights())] for t in tasks_spec]
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
                tx, ty = _generate(ts, t, p.train_per_class, 2 * t, cfg.image_size, p, knobs)
                vx, vy = _generate(ts, t, p.test_per_class, 2 * t + 1, cfg.image_size, p, knobs)
                tensors.append({"train_x": tx, "train_y": ty, "test_x": vx, "test_y": vy})
            try:
                atomic_torch_save(tensors, path)
            except OSError:
                pass  # a read-only or full cache folder only costs regeneration next time
        tasks = [Task(index=t, name=ts.name, factors=ts.levels(), **tens)
                 for t, (ts, tens) in enumerate(zip(tasks_spec, tensors))]
        names = [f"object {c}" for c in range(p.n_classes)]
        return Stream(tasks=tasks, n_classes=p.n_classes, class_names=names, source=self.name)
