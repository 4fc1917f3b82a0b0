"""Load the stream a DataConfig describes: its source's (data/source.py) ``load()``, cut to ``data.n_tasks``."""
from __future__ import annotations

from dynnn_lib.core.config import DataConfig
from dynnn_lib.core.errors import DataError
from dynnn_lib.data.source import source_for
from dynnn_lib.data.stream import Stream


def load_stream(cfg: DataConfig) -> Stream:
    """Load (or generate and cache) the stream a DataConfig describes."""
    stream = source_for(cfg).load()
    if cfg.n_tasks is not None:
        if cfg.n_tasks > len(stream):
            raise DataError(f"data.n_tasks={cfg.n_tasks} but the stream has only {len(stream)} tasks; lower n_tasks")
        stream.tasks = stream.tasks[: cfg.n_tasks]
    if len(stream) < 2:
        raise DataError(f"the stream has {len(stream)} task; incremental learning needs at least 2 tasks")
    return stream


def stream_length(cfg: DataConfig) -> int:
    """The number of tasks the stream will have (``data.n_tasks`` or the source's count), cheaply: the source counts
    folders or reads its spec, nothing is decoded."""
    total = source_for(cfg).count_tasks()
    return total if cfg.n_tasks is None or cfg.n_tasks > total else cfg.n_tasks
