"""Streams as data: which tasks, in which order, under which factor levels.

A stream is a :class:`StreamSpec`: an ordered list of tasks, each a name, the levels of the four factors
(illumination, occlusion, pixel size, clutter; a factor left out stays at its neutral level) and a ``segment``
(0 = the default viewpoints and backgrounds; 1, 2, ... = other ones, as the dataset's segments of one level
differ). ``data.stream`` names one:

* ``round1`` - the IROS 2019 challenge's round-1 batches (OpenLORIS-Object page, 2019-07-16; 9 tasks): the
  embedded default, generated bit for bit as before streams were data;
* ``benchmark1-<factor>`` - the dataset's first protocol for one factor (clutter, illumination, occlusion,
  pixel): its 3 levels x 3 segments, 9 tasks, level by level, segments 1..3 within a level (the order the
  real ``openloris-benchmark1`` layout reads them in, data/openloris.py);
* ``benchmark2`` - the second protocol: 12 tasks, each factor's 3 levels in sequence (illumination,
  occlusion, pixel, clutter, as ``openloris-benchmark2`` reads them);
* a path to a YAML file of your own::

      name: my-stream
      tasks:
        - {name: bright, illumination: strong}
        - {name: dark and cluttered, illumination: weak, clutter: complex, segment: 1}

The class count and split sizes are ``data.n_classes``, ``data.train_per_class`` and ``data.test_per_class``.
A bad spec is one line naming the task and the field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from . import synthetic

# the first protocol's level order (dataset page: strong/normal/weak light, 0/25/50 % occlusion, large/medium/small
# objects, simple/normal/complex clutter): the "easy" level first, as its level-1 segment folders are
LEVEL_ORDER: dict[str, tuple[str, ...]] = {
    "illumination": ("strong", "normal", "weak"),
    "occlusion": ("0%", "25%", "50%"),
    "pixel": ("large", "medium", "small"),
    "clutter": ("simple", "normal", "complex"),
}
BENCHMARK2_FACTORS = ("illumination", "occlusion", "pixel", "clutter")  # as data/openloris.py reads them
SEGMENTS_PER_LEVEL = 3


@dataclass(frozen=True)
class TaskSpec:
    name: str
    factors: Mapping[str, str] = field(default_factory=dict)  # as given; synthetic.full_factors completes them
    segment: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dict(self.factors), **({"segment": self.segment} if self.segment else {})}


@dataclass(frozen=True)
class StreamSpec:
    name: str
    tasks: tuple[TaskSpec, ...]

    def __len__(self) -> int:
        return len(self.tasks)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: what the data cache key and a YAML file hold."""
        return {"name": self.name, "tasks": [t.to_dict() for t in self.tasks]}


def _round1() -> StreamSpec:
    return StreamSpec("round1", tuple(TaskSpec(f"task {t}: " + synthetic.describe(f), dict(f))
                                      for t, f in enumerate(synthetic.ROUND1_STREAM)))


def _benchmark1(factor: str) -> StreamSpec:
    tasks = []
    for level in LEVEL_ORDER[factor]:
        for seg in range(1, SEGMENTS_PER_LEVEL + 1):
            tasks.append(TaskSpec(f"task {len(tasks)}: {factor} {level}, segment {seg}", {factor: level}, seg))
    return StreamSpec(f"benchmark1-{factor}", tuple(tasks))


def _benchmark2() -> StreamSpec:
    tasks = [TaskSpec(f"task {k}: {factor} {level}", {factor: level})
             for k, (factor, level) in enumerate((f, lv) for f in BENCHMARK2_FACTORS for lv in LEVEL_ORDER[f])]
    return StreamSpec("benchmark2", tuple(tasks))


PRESETS = ("round1", *(f"benchmark1-{f}" for f in LEVEL_ORDER), "benchmark2")


def from_dict(body: Any, where: str) -> StreamSpec:
    """A spec from plain data (a parsed YAML file); errors name the task and the field."""
    if not isinstance(body, Mapping):
        raise ConfigError(f"{where}: a stream is a mapping with 'name' and 'tasks'")
    unknown = sorted(set(body) - {"name", "tasks"})
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}; a stream has 'name' and 'tasks'")
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or len(tasks) < 2:
        raise ConfigError(f"{where}: 'tasks' must list at least 2 tasks (incremental learning needs a sequence)")
    out = []
    for i, task in enumerate(tasks):
        label = f"{where}: task {i}"
        if not isinstance(task, Mapping):
            raise ConfigError(f"{label}: a task is a mapping such as {{name: dark, illumination: weak}}")
        for key, value in task.items():
            if key not in ("name", "segment", *synthetic.LEVELS):
                raise ConfigError(f"{label}: unknown field {key!r}; use name, segment or a factor: "
                                  f"{', '.join(synthetic.LEVELS)}")
        segment = task.get("segment", 0)
        if isinstance(segment, bool) or not isinstance(segment, int) or segment < 0:
            raise ConfigError(f"{label}: segment={segment!r} must be an integer >= 0 (0: the default viewpoints)")
        factors = {k: str(v) for k, v in task.items() if k in synthetic.LEVELS}
        try:
            synthetic.full_factors(factors)
        except ConfigError as e:
            raise ConfigError(f"{label}: {e}") from None
        name = str(task.get("name") or f"task {i}: " + synthetic.describe(factors))
        out.append(TaskSpec(name, factors, segment))
    return StreamSpec(str(body.get("name") or where), tuple(out))


def load_spec(stream: str) -> StreamSpec:
    """A preset's name or a YAML file's path -> its StreamSpec (one-line ConfigError otherwise)."""
    if stream == "round1":
        return _round1()
    if stream == "benchmark2":
        return _benchmark2()
    if stream.startswith("benchmark1-") and stream[len("benchmark1-"):] in LEVEL_ORDER:
        return _benchmark1(stream[len("benchmark1-"):])
    path = Path(stream)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        if not path.is_file():
            raise ConfigError(f"data.stream={stream!r}: no such file")
        import yaml

        try:
            body = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"data.stream={stream!r}: not valid YAML ({str(e).splitlines()[0]})") from None
        return from_dict(body, str(path))
    raise ConfigError(f"data.stream={stream!r} is neither a preset ({', '.join(PRESETS)}) nor a YAML file")
