"""What a generated stream is, as data: the four factors and their levels, the generator's knobs, the task list.

The configuration validates ``data.stream`` and ``data.generator`` against this module, and data/synthetic.py
renders what it describes (this is the description; the pixels are made there).

A stream is a :class:`StreamSpec`: an ordered list of tasks, each a name, the levels of the four factors
(illumination, occlusion, pixel size, clutter; a factor left out stays at its neutral level), a ``segment``
(0 = the default viewpoints and backgrounds; 1, 2, ... = other ones, as the dataset's segments of one level
differ) and a ``composition``: how its images combine the levels it names.

* ``conjunction`` (the default, every stream as it always was): every image has every level the task names (every
  image of round1's task 3 is weak light *and* large);
* ``mixture`` (a round-1 batch as the dataset page describes it, "drawn from 2-3 of the 12 factor sub-directories"):
  each image comes from one (factor, level) subdirectory the task names, by the task's ``shares`` (equal unless it
  says), with that factor at its level and the others at :data:`BASE_LEVELS` (level 1, as a factor's folders hold
  the others). A subdirectory's recordings belong to it, not to the task: two tasks naming it show frames of the
  same recordings (data/synthetic.py).

``data.stream`` names one:

* ``round1-calibrated`` - the embedded default: round1's tasks rendered with the knobs ``dynnn calibrate`` fitted
  to the paper's finetune matrix and V2' diagonal (``core/round1_calibrated.yaml``, experiments/calibrate/), and task 0
  trained with the photometric augmentation fitted with them;
* ``round1`` - the IROS 2019 challenge's round-1 batches (OpenLORIS-Object page, 2019-07-16; 9 tasks) as they
  were generated before the calibration (the knobs' defaults, no photometric augmentation), bit for bit as before
  streams were data;
* ``round1-mixture``, ``round1-calibrated-mixture`` - those two with every task a mixture of the subdirectories
  it names (equal shares): the same tasks, knobs and task-0 augmentation, another composition;
* ``benchmark1-<factor>`` - the dataset's first protocol for one factor (clutter, illumination, occlusion,
  pixel): its 3 levels x 3 segments, 9 tasks, level by level, segments 1..3 within a level (the order the
  real ``openloris-benchmark1`` layout reads them in, data/sources/openloris.py);
* ``benchmark2`` - the second protocol: 12 tasks, each factor's 3 levels in sequence (illumination,
  occlusion, pixel, clutter, as ``openloris-benchmark2`` reads them);
* a path to a YAML file of your own::

      name: my-stream
      tasks:
        - {name: bright, illumination: strong}
        - {name: dark and cluttered, illumination: weak, clutter: complex, segment: 1}
        - {illumination: weak, pixel: large, composition: mixture, shares: {illumination: 2, pixel: 1}}
      composition: conjunction         # optional: the tasks' default (conjunction or mixture; a task's own wins)
      generator: {weak_gain: 0.45}     # optional: knobs the stream is rendered with (data.generator wins)
      base_photometric: 0.2            # optional: task 0's augmentation this stand-in goes with (default 0)

A stream spec is a whole stand-in: its tasks, how strongly the generator renders their factor levels, and the
task-0 augmentation it was fitted with; the run cache key covers all three (core/config.py).

The class count and split sizes are ``data.n_classes``, ``data.train_per_class`` and ``data.test_per_class``.
A bad spec is one line naming the task and the field.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from dynnn_lib.core.errors import ConfigError

# The factors and their levels, defined once for the generator, the presets and the real layouts. Each factor's
# levels are in the dataset's level order (its page: strong/normal/weak light, 0/25/50 % occlusion, large/medium/small
# objects, simple/normal/complex clutter), the "easy" level first, as its level-1 segment folders are.
LEVELS: dict[str, tuple[str, ...]] = {
    "illumination": ("strong", "normal", "weak"),
    "occlusion": ("0%", "25%", "50%"),
    "pixel": ("large", "medium", "small"),
    "clutter": ("simple", "normal", "complex"),
}
FACTORS = tuple(sorted(LEVELS))  # the dataset's factor folders (method_and_dataset.md 2.4)
SEGMENTS_PER_LEVEL = 3           # the current layout's segment folders per level (benchmark1.py)
NEUTRAL: dict[str, str] = {"illumination": "normal", "occlusion": "0%", "pixel": "medium", "clutter": "normal"}
# How a task's images combine the factor levels it names. A conjunction gives every image every named level (the
# stand-in as it always was: task 3's images are all weak light *and* large). A mixture is a batch of the challenge's
# round 1 (method_and_dataset.md 2.3: "drawn from 2-3 of the 12 factor sub-directories", "randomly shuffled across
# factors"): each image comes from one named (factor, level) subdirectory, in which that factor is at its level and
# the others at BASE_LEVELS.
CONJUNCTION, MIXTURE = "conjunction", "mixture"
COMPOSITIONS = (CONJUNCTION, MIXTURE)
# The levels a factor subdirectory holds its other factors at: level 1, as the dataset page says a factor's folders
# hold the others while that factor varies (method_and_dataset.md 2.4: "other factors held at level 1"). Round 1 used
# the July-2019 data, whose page numbers level 1 as normal light, 0 % occlusion, 30x30-200x200 pixels (medium) and
# simple clutter (2.2); the current page's level 1 also has 0 % occlusion and simple clutter. So the base is NEUTRAL
# with simple clutter instead of normal; NEUTRAL stays what a conjunction fills in, so every existing stream renders
# as before.
BASE_LEVELS: dict[str, str] = {**NEUTRAL, "clutter": "simple"}

# Round-1 batch composition (OpenLORIS-Object page, 2019-07-16); task t = batch t+1.
ROUND1_STREAM: tuple[dict[str, str], ...] = (
    {"occlusion": "10%", "pixel": "small"},
    {"illumination": "strong", "clutter": "complex"},
    {"illumination": "normal", "clutter": "simple"},
    {"illumination": "weak", "pixel": "large"},
    {"occlusion": "0%", "clutter": "complex"},
    {"occlusion": "50%", "pixel": "large"},
    {"occlusion": "25%", "clutter": "simple"},
    {"illumination": "strong", "pixel": "medium", "clutter": "complex"},
    {"illumination": "weak", "occlusion": "50%", "pixel": "large"},
)

@dataclass(frozen=True)
class Knobs:
    """The generator's strengths per factor level (``data.generator``); the defaults are the constants the embedded
    stream was always generated with. ``dynnn calibrate`` fits them to the paper's matrices."""

    strong_gain: float = 1.3            # strong light: exposure gain (x 1..1.2 per image), washes colours out
    strong_cast: tuple[float, float, float] = (1.1, 1.0, 0.8)   # strong light: warm RGB cast
    weak_gain: float = 0.3              # weak light: exposure gain (+0..0.12 per image)
    weak_cast: tuple[float, float, float] = (0.75, 0.9, 1.25)   # weak light: blue RGB cast
    weak_noise: float = 0.04            # weak light: sensor noise (std, on a 0..1 scale)
    occlusion_scale: float = 1.0        # occluded share of the object's box = level (e.g. 25 %) x this
    complex_distractors: int = 5        # complex clutter: distractor objects per image
    complex_other_classes: bool = True  # complex clutter: distractors are other classes' objects (else plain discs)
    complex_noise: float = 0.25         # complex clutter: weight of per-pixel background noise
    pixel_large: float = 0.85           # large objects: share of the frame they span (medium: 0.55)
    pixel_small: float = 0.32           # small objects: share of the frame they span
    pose_spread: float = math.pi / 4    # in-plane rotation range of every object (radians)
    class_similarity: float = 0.0       # 0: classes' own colours; 1: every class has the mean colours (shape only)
    colour_candidates: int = 1          # each class's colour pair: the best of this many draws (the farthest from the
                                        # classes before it), so instances differ less by chance colour clashes
    scenes_per_class: int = 0           # 0: every image its own draw (pose, place, background, light, occluder);
                                        # S > 0: each class of a task is recorded in S scenes and every image, train
                                        # or test, is a frame of one of them (the scene's draw, jittered a little),
                                        # as the dataset's train and test frames come from the same short videos

    def __post_init__(self) -> None:
        def check(name: str, ok: bool, what: str) -> None:
            if not ok:
                raise ConfigError(f"data.generator.{name}={getattr(self, name)!r} must be {what}")

        num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
        for name in ("strong_gain", "weak_gain"):
            check(name, num(getattr(self, name)) and 0 < getattr(self, name) <= 3, "a gain in (0, 3]")
        for name in ("strong_cast", "weak_cast"):
            v = getattr(self, name)
            check(name, isinstance(v, tuple) and len(v) == 3 and all(num(c) and 0 < c <= 3 for c in v),
                  "three RGB gains in (0, 3], e.g. [1.1, 1.0, 0.8]")
        check("weak_noise", num(self.weak_noise) and 0 <= self.weak_noise <= 0.5, "a noise std in [0, 0.5]")
        check("occlusion_scale", num(self.occlusion_scale) and 0 <= self.occlusion_scale <= 1.9,
              "a factor in [0, 1.9] (the covered share stays below 95 %)")
        check("complex_distractors", isinstance(self.complex_distractors, int) and not isinstance(
            self.complex_distractors, bool) and 0 <= self.complex_distractors <= 12, "an integer in 0..12")
        check("complex_other_classes", isinstance(self.complex_other_classes, bool), "true or false")
        check("complex_noise", num(self.complex_noise) and 0 <= self.complex_noise <= 1, "a weight in [0, 1]")
        for name in ("pixel_large", "pixel_small"):
            check(name, num(getattr(self, name)) and 0.1 <= getattr(self, name) <= 1.0, "a share in [0.1, 1]")
        check("pose_spread", num(self.pose_spread) and 0 <= self.pose_spread <= 2 * math.pi, "radians in [0, 2 pi]")
        check("class_similarity", num(self.class_similarity) and 0 <= self.class_similarity < 1, "in [0, 1)")
        check("colour_candidates", isinstance(self.colour_candidates, int) and not isinstance(
            self.colour_candidates, bool) and 1 <= self.colour_candidates <= 64, "an integer in 1..64")
        check("scenes_per_class", isinstance(self.scenes_per_class, int) and not isinstance(
            self.scenes_per_class, bool) and 0 <= self.scenes_per_class <= 1000, "an integer in 0..1000 (0: off)")

    def pixel_scale(self, level: str) -> float:
        return {"large": self.pixel_large, "medium": 0.55, "small": self.pixel_small}[level]


DEFAULT_KNOBS = Knobs()


def make_knobs(values: Mapping[str, Any]) -> Knobs:
    """Knobs from plain data (YAML lists become tuples); an unknown name is one line listing the valid ones."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"data.generator must be a mapping of knob names to values, got {values!r}")
    names = [f.name for f in dataclasses.fields(Knobs)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"unknown parameter data.generator.{unknown[0]}; valid names: {', '.join(sorted(names))}")
    return Knobs(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def full_factors(partial: Mapping[str, str], base: Mapping[str, str] = NEUTRAL) -> dict[str, str]:
    """Complete a partial factor spec with the `base` levels (a conjunction's: NEUTRAL) and validate it."""
    unknown = sorted(set(partial) - set(LEVELS))
    if unknown:
        raise ConfigError(f"unknown factor {unknown[0]!r}; factors are: {', '.join(LEVELS)}")
    out = {**base, **partial}
    for name, level in out.items():
        if name == "occlusion":
            occlusion_fraction(level)
        elif level not in LEVELS[name]:
            raise ConfigError(f"{name}={level!r} is not a level; choose one of: {', '.join(LEVELS[name])}")
    return out


def describe(factors: Mapping[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in factors.items())


def occlusion_fraction(level: str) -> float:
    try:
        value = float(str(level).rstrip("%")) / 100.0
    except ValueError:
        value = -1.0
    if not str(level).endswith("%") or not 0.0 <= value < 1.0:
        raise ConfigError(f"occlusion={level!r} must be a percentage below 100, e.g. '25%'")
    return value


BENCHMARK2_FACTORS = ("illumination", "occlusion", "pixel", "clutter")  # benchmark2.py's order (data/sources/openloris.py)


def subdirectory_factors(factor: str, level: str) -> dict[str, str]:
    """The four levels of every image of one factor subdirectory: `factor` at `level`, the others at BASE_LEVELS."""
    return full_factors({factor: level}, BASE_LEVELS)


@dataclass(frozen=True)
class TaskSpec:
    """One task: the factor levels it names, its segment and how its images combine those levels (`composition`)."""

    name: str
    factors: Mapping[str, str] = field(default_factory=dict)  # as given; full_factors completes them
    segment: int = 0
    composition: str = CONJUNCTION   # MIXTURE: each image from one of the subdirectories `factors` names
    shares: Mapping[str, float] = field(default_factory=dict)  # a mixture's weight per named factor (unset: equal)

    def subdirectories(self) -> tuple[tuple[str, str], ...]:
        """The (factor, level) subdirectories a mixture's images come from, in the order the task names them."""
        return tuple(self.factors.items())

    def weights(self) -> tuple[float, ...]:
        """Each subdirectory's share of a mixture's images (relative weights, equal unless `shares` says)."""
        return tuple(self.shares.get(factor, 1) for factor in self.factors)

    def levels(self) -> dict[str, str]:
        """The task's four levels as a task label: a conjunction's, or a mixture's subdirectories over the base."""
        return full_factors(self.factors, BASE_LEVELS if self.composition == MIXTURE else NEUTRAL)

    def to_dict(self) -> dict[str, Any]:
        """Plain data; a conjunction task's is what it was before compositions existed, so its run keys stay."""
        return {"name": self.name, **dict(self.factors), **({"segment": self.segment} if self.segment else {}),
                **({"composition": self.composition} if self.composition != CONJUNCTION else {}),
                **({"shares": dict(self.shares)} if self.shares else {})}


@dataclass(frozen=True)
class StreamSpec:
    name: str
    tasks: tuple[TaskSpec, ...]
    generator: Mapping[str, Any] = field(default_factory=dict)  # knob values (Knobs fields) under data.generator
    base_photometric: float = 0.0   # RunConfig.base_photometric when a run leaves it unset

    def __len__(self) -> int:
        return len(self.tasks)

    def knobs(self, overrides: Mapping[str, Any] | None = None) -> Knobs:
        """The knobs this stream is rendered with: the defaults, then the spec's, then `overrides`."""
        return make_knobs({**dict(self.generator), **dict(overrides or {})})

    def to_dict(self) -> dict[str, Any]:
        """Plain data: what a YAML file holds and the run cache key reads."""
        return {"name": self.name, "tasks": [t.to_dict() for t in self.tasks],
                **({"generator": dict(self.generator)} if self.generator else {}),
                **({"base_photometric": self.base_photometric} if self.base_photometric else {})}


def _round1() -> StreamSpec:
    return StreamSpec("round1", tuple(TaskSpec(f"task {t}: " + describe(f), dict(f))
                                      for t, f in enumerate(ROUND1_STREAM)))


DEFAULT_STREAM = "round1-calibrated"
# Generated instances (data.data_seed) by use, disjoint (tested): a calibration reads only FIT_INSTANCES (reserved
# for fitting: one seed each, the objective is the mean over them); every report of the stand-in's fidelity and
# every claim about the method reads only EVALUATION_INSTANCES, so what is reported is a prediction on draws the fit
# never saw. Instance 0 is the default data_seed of a run (tutorials, the explorer); the fit in use
# (round1_calibrated.yaml) read it, as its record says (params/calibration.json fit_instances). Eight evaluation
# instances with one seed each: the instance is the unit of a claim (statistics.md), and at the cost of 2 instances
# x 5 seeds (10 runs per configuration) eight instances give 7 degrees of freedom instead of 1 (the t quantile 2.36
# instead of 12.7) and an interval that covers the spread between instances, which on this generator is larger than
# the spread between seeds (verdicts moved from instance to instance at 5 seeds each).
FIT_INSTANCES = (100, 101, 102)
# Held back on the fit side: read only to confirm a search's best before it is a candidate (``dynnn calibrate
# --confirm``), never by a search's objective nor by a report. The best of 40 trials on three instances is partly
# those instances' luck (the second search's best, 9.57 against the fit in use's 10.79 on 100-102, scored 12.00
# against 9.71 here); fresh draws tell, without spending an evaluation instance.
CONFIRM_INSTANCES = (103, 104, 105)
EVALUATION_INSTANCES = (1, 2, 3, 4, 5, 6, 7, 8)
# What `dynnn calibrate` fitted, as data (the run key covers a spec's content, so adopting another fit retrains only
# what it shapes): the knobs (a knob left out keeps its default) and task 0's photometric augmentation. Fitted on
# round1's tasks; a knob acts per factor level, so the same values render any stream's levels.
CALIBRATED_FILE = Path(__file__).with_name("round1_calibrated.yaml")


def _round1_calibrated() -> StreamSpec:
    body = _read_yaml(CALIBRATED_FILE) or {}
    return from_dict({**body, "name": "round1-calibrated", "tasks": [t.to_dict() for t in _round1().tasks]},
                     str(CALIBRATED_FILE))


def _benchmark1(factor: str) -> StreamSpec:
    tasks = []
    for level in LEVELS[factor]:
        for seg in range(1, SEGMENTS_PER_LEVEL + 1):
            tasks.append(TaskSpec(f"task {len(tasks)}: {factor} {level}, segment {seg}", {factor: level}, seg))
    return StreamSpec(f"benchmark1-{factor}", tuple(tasks))


def _benchmark2() -> StreamSpec:
    tasks = [TaskSpec(f"task {k}: {factor} {level}", {factor: level})
             for k, (factor, level) in enumerate((f, lv) for f in BENCHMARK2_FACTORS for lv in LEVELS[f])]
    return StreamSpec("benchmark2", tuple(tasks))


# The round-1 streams with mixture batches (the dataset page's composition), beside their conjunctions.
MIXTURE_PRESETS = {"round1-mixture": "round1", "round1-calibrated-mixture": "round1-calibrated"}


def as_mixture(spec: StreamSpec, name: str) -> StreamSpec:
    """`spec` with every task a mixture of the subdirectories it names (equal shares): the same tasks, knobs and
    task-0 augmentation, so the two differ in the composition only."""
    return dataclasses.replace(spec, name=name, tasks=tuple(dataclasses.replace(t, composition=MIXTURE)
                                                            for t in spec.tasks))


PRESETS = ("round1-calibrated", "round1", *MIXTURE_PRESETS, *(f"benchmark1-{f}" for f in LEVELS), "benchmark2")


def from_dict(body: Any, where: str) -> StreamSpec:
    """A spec from plain data (a parsed YAML file); errors name the task and the field."""
    if not isinstance(body, Mapping):
        raise ConfigError(f"{where}: a stream is a mapping with 'name' and 'tasks'")
    unknown = sorted(set(body) - {"name", "tasks", "composition", "generator", "base_photometric"})
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}; a stream has 'name', 'tasks' and optionally "
                          f"'composition', 'generator' and 'base_photometric'")
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or len(tasks) < 2:
        raise ConfigError(f"{where}: 'tasks' must list at least 2 tasks (incremental learning needs a sequence)")
    composition = _composition(body.get("composition", CONJUNCTION), where)
    out = tuple(_task_from_dict(task, f"{where}: task {i}", i, composition) for i, task in enumerate(tasks))
    generator = body.get("generator") or {}
    if not isinstance(generator, Mapping):
        raise ConfigError(f"{where}: 'generator' must be a mapping of knob names to values, e.g. {{weak_gain: 0.45}}")
    spec = StreamSpec(str(body.get("name") or where), out, dict(generator),
                      check_photometric(body.get("base_photometric", 0.0), f"{where}: base_photometric"))
    try:
        spec.knobs()
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return spec


def _composition(value: Any, label: str) -> str:
    if value not in COMPOSITIONS:
        raise ConfigError(f"{label}: composition={value!r} must be one of: {', '.join(COMPOSITIONS)}")
    return value


def _task_from_dict(task: Any, label: str, index: int, composition: str) -> TaskSpec:
    """One task of a stream file; `composition` is the stream's, which the task's own field overrides."""
    if not isinstance(task, Mapping):
        raise ConfigError(f"{label}: a task is a mapping such as {{name: dark, illumination: weak}}")
    for key in task:
        if key not in ("name", "segment", "composition", "shares", *LEVELS):
            raise ConfigError(f"{label}: unknown field {key!r}; use name, segment, composition, shares or a factor: "
                              f"{', '.join(LEVELS)}")
    segment = task.get("segment", 0)
    if isinstance(segment, bool) or not isinstance(segment, int) or segment < 0:
        raise ConfigError(f"{label}: segment={segment!r} must be an integer >= 0 (0: the default viewpoints)")
    factors = {k: str(v) for k, v in task.items() if k in LEVELS}
    try:
        full_factors(factors)
    except ConfigError as e:
        raise ConfigError(f"{label}: {e}") from None
    composition = _composition(task.get("composition", composition), label)
    if composition == MIXTURE and not factors:
        raise ConfigError(f"{label}: a mixture task names at least one factor (the subdirectories its images come "
                          f"from)")
    shares = _shares(task.get("shares"), factors, composition, label)
    name = str(task.get("name") or f"task {index}: " + describe(factors))
    return TaskSpec(name, factors, segment, composition, shares)


def _shares(value: Any, factors: Mapping[str, str], composition: str, label: str) -> dict[str, float]:
    """A mixture task's weights, one positive number for each factor it names (None: equal shares)."""
    if value is None:
        return {}
    named = ", ".join(factors)
    if composition != MIXTURE:
        raise ConfigError(f"{label}: shares apply to a mixture task only (composition: {MIXTURE})")
    if not isinstance(value, Mapping):
        raise ConfigError(f"{label}: shares must map each factor the task names ({named}) to a weight, e.g. "
                          f"{{{', '.join(f'{f}: 1' for f in factors)}}}")
    for factor in value:
        if factor not in factors:
            raise ConfigError(f"{label}: shares names {factor!r}, which the task does not; its factors: {named}")
    for factor in factors:
        if factor not in value:
            raise ConfigError(f"{label}: shares leaves out {factor!r}; give a weight for each of: {named}")
        weight = value[factor]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight < math.inf:
            raise ConfigError(f"{label}: shares.{factor}={weight!r} must be a positive number")
    return {factor: value[factor] for factor in factors}


def check_photometric(value: Any, name: str = "base_photometric") -> float:
    """Task 0's photometric augmentation strength: a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"{name}={value!r} must be a strength in [0, 1), e.g. 0.3")
    return float(value)


def load_spec(stream: str) -> StreamSpec:
    """A preset's name or a YAML file's path -> its StreamSpec (one-line ConfigError otherwise)."""
    if stream == "round1":
        return _round1()
    if stream == "round1-calibrated":
        return _round1_calibrated()
    if stream in MIXTURE_PRESETS:
        return as_mixture(load_spec(MIXTURE_PRESETS[stream]), stream)
    if stream == "benchmark2":
        return _benchmark2()
    if stream.startswith("benchmark1-") and stream[len("benchmark1-"):] in LEVELS:
        return _benchmark1(stream[len("benchmark1-"):])
    path = Path(stream)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        if not path.is_file():
            raise ConfigError(f"data.stream={stream!r}: no such file")
        import yaml

        try:
            body = _read_yaml(path)
        except yaml.YAMLError as e:
            raise ConfigError(f"data.stream={stream!r}: not valid YAML ({str(e).splitlines()[0]})") from None
        return from_dict(body, str(path))
    raise ConfigError(f"data.stream={stream!r} is neither a preset ({', '.join(PRESETS)}) nor a YAML file")


def _read_yaml(path: Path) -> Any:
    """A stream file's parsed content, read again only when the file changes: every configuration and every run
    key reads its stream's spec, and parsing the YAML each time was most of building a configuration."""
    st = path.stat()
    return _parse_yaml(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _parse_yaml(path: str, mtime_ns: int, size: int) -> Any:
    import yaml

    return yaml.safe_load(Path(path).read_text())
