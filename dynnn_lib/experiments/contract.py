"""The contract every experiment keeps: it declares the runs it needs and returns its analysis as one typed,
versioned JSON document, which the renderers (reports/) read and nothing else::

    @register
    ... Experiment(name="fidelity", schema="dynnn.fidelity/4", runs=..., document="fidelity.json",
                   blocks={"fidelity": blocks.fidelity})

``dynnn plan`` trains the union of every registered experiment's runs (``planned``), ``dynnn readme`` fills each
experiment's README/docs blocks from its document (reports/readme.py ``render_blocks``), and the CLI gets a subcommand for each
experiment that has one. The built-ins are registered in :mod:`dynnn_lib.experiments.catalogue` (and the notebooks'
runs in :mod:`dynnn_lib.workbench.plan`); one of yours is registered the same way from any module, and appears in
all three without an edit elsewhere.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from dynnn_lib.core import make_all, registry
from dynnn_lib.core.config import RunConfig
from dynnn_lib.core.errors import ConfigError


def _setting(key: str, kind: Callable[[Any], Any] = lambda v: v) -> Any:
    """A field's default: make all's setting `key` (params/make_all.yaml, core/make_all.py), read when a Settings is
    made, so the Makefile and every experiment read the one file."""
    return field(default_factory=lambda: kind(make_all.read()[key]))


@dataclass(frozen=True)
class Settings:
    """What ``make all`` asks of every experiment (``dynnn plan``'s options); each default is params/make_all.yaml's."""

    seeds: int = _setting("seeds")                    # seeds per evaluation instance (the instance is the unit)
    instances: tuple[int, ...] = _setting("instances", tuple)  # generated evaluation instances (core/streams.py)
    repro_seeds: int = _setting("repro_seeds")        # seeds of the reproduction on its instance
    streams: tuple[str | None, ...] = _setting("standins", tuple)  # the stand-ins judged (the first: the default)
    params: Mapping[str, Any] = field(default_factory=dict)  # the notebooks' batch parameters (params/default.yaml)
    sched_seeds: int = _setting("sched_seeds")        # make schedules (not in make all)
    max_heads: int | None = _setting("max_heads")     # make schedules: at most this many heads (None: all)
    baseline_seeds: int = _setting("baseline_seeds")  # make baselines (not in make all)

    def __post_init__(self) -> None:
        for name in ("seeds", "repro_seeds", "sched_seeds", "baseline_seeds"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name}={v!r}: need at least 1")
        inst = list(self.instances)
        if not inst or len(set(inst)) != len(inst) or any(isinstance(k, bool) or not isinstance(k, int) or k < 0
                                                          for k in inst):
            raise ConfigError(f"instances={inst!r} must be distinct non-negative data seeds, e.g. 1 2 3")
        if not self.streams or len(set(self.streams)) != len(self.streams):
            raise ConfigError(f"streams={list(self.streams)!r}: name one or more distinct generated streams")
        object.__setattr__(self, "instances", tuple(inst))
        object.__setattr__(self, "streams", tuple(self.streams))


Renderer = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class Command:
    """The experiment's CLI subcommand: ``dynnn <name>``."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Experiment:
    """One experiment: the runs it needs under `Settings`, the document it writes and the blocks rendered from it.

    schema: the document's type and version, ``dynnn.<name>/<n>``: bump n when its fields change; a renderer
    refuses a document of another version (one line: regenerate it).
    """

    name: str
    schema: str
    runs: Callable[[Settings], Sequence[RunConfig]]
    document: str | None = None          # its JSON document under reports/, e.g. "fidelity.json"
    blocks: Mapping[str, Renderer] = field(default_factory=dict)  # README/docs block -> renderer of the document
    in_all: bool = True                  # planned by make all (False: its own make target, e.g. make baselines)
    command: Command | None = None       # its CLI subcommand, if any
    summary: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"experiment name {self.name!r}: a short name of letters, digits, - or _")
        if not self.schema.startswith(f"dynnn.{self.name}/") or not self.schema.rsplit("/", 1)[1].isdigit():
            raise ConfigError(f"experiment {self.name!r}: schema {self.schema!r} must be dynnn.{self.name}/<version>")
        if self.blocks and not self.document:
            raise ConfigError(f"experiment {self.name!r} renders blocks but names no document to render them from")


def register(exp: Experiment) -> Experiment:
    """Make an experiment known to dynnn plan, dynnn readme and the CLI (registering a name again replaces it)."""
    if not isinstance(exp, Experiment):
        raise ConfigError(f"register takes an Experiment, got {exp!r}")
    return registry.EXPERIMENTS.add(exp)


def experiments() -> dict[str, Experiment]:
    return registry.EXPERIMENTS.available()


def unique(configs: Sequence[RunConfig]) -> list[RunConfig]:
    """The configurations with equal keys (the same trained run) kept once, in order."""
    seen, out = set(), []
    for c in configs:
        if c.key() not in seen:
            seen.add(c.key())
            out.append(c)
    return out


def planned(settings: Settings, only: Sequence[str] | None = None) -> dict[str, list[RunConfig]]:
    """Experiment name -> the runs it needs, for every experiment make all plans (`only`: these, planned or not)."""
    exps = experiments()
    if only:
        missing = sorted(set(only) - set(exps))
        if missing:
            raise ConfigError(f"--only {missing[0]}: no such experiment; choose from {', '.join(sorted(exps))}")
    chosen = [e for e in exps.values() if (e.name in only if only else e.in_all)]
    return {e.name: list(e.runs(settings)) for e in chosen}
