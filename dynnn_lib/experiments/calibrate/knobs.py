"""The knobs the calibration moves and the runs a trial trains: the search space, the named points (the stream
before the fit, the hand-made point, the fit in use) and a trial's finetune and V2' configurations on the fit stream.

Apart from the search so that the fit steps, the evaluation and the notebook's table read the same values without
Optuna; the fit stream's task count is read from its spec (:func:`stream_tasks`), never typed.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from dynnn_lib.core.config import RunConfig, from_dict
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.core.streams import DEFAULT_KNOBS, DEFAULT_STREAM, MIXTURE_PRESETS, load_spec
from dynnn_lib.experiments.paper import V2_OVERRIDES
from dynnn_lib.reports import pages

FIT_STREAM = "round1"  # the stream whose knobs a trial sets (the stand-in before the calibration)
# the streams a search may fit (--set data.stream=...): round1's batches as conjunctions or as mixtures (issue 43)
FIT_STREAMS = (FIT_STREAM, *(m for m, of in MIXTURE_PRESETS.items() if of == FIT_STREAM))


def fit_stream(base: Mapping[str, Any]) -> str:
    """The stream a trial's knobs are set on: `base`'s ``data.stream`` when it names one of :data:`FIT_STREAMS`,
    else round1; another stream is a one-line error (its knobs were fitted already, or it is not round 1's)."""
    stream = dict(base.get("data", {})).get("stream", FIT_STREAM)
    if stream not in FIT_STREAMS:
        raise ConfigError(f"--set data.stream={stream}: a search sets the knobs of {' or '.join(FIT_STREAMS)}")
    return stream


def stream_tasks() -> int:
    """The fit stream's task count, from its spec: the size of the matrices a trial reads, task by task."""
    return len(load_spec(FIT_STREAM))

# name -> (kind, low, high): the knobs the fit moves; every other knob keeps its default
SPACE: dict[str, tuple[str, float, float]] = {
    "strong_gain": ("float", 0.8, 1.8),
    "weak_gain": ("float", 0.1, 0.7),
    "weak_noise": ("float", 0.0, 0.1),
    "occlusion_scale": ("float", 0.4, 1.6),
    "complex_distractors": ("int", 0, 6),
    "complex_other_classes": ("bool", 0, 1),
    "complex_noise": ("float", 0.0, 0.3),
    "pixel_large": ("float", 0.6, 1.0),
    "pixel_small": ("float", 0.2, 0.55),
    "pose_spread": ("float", 0.0, math.pi / 2),
    "class_similarity": ("float", 0.0, 0.6),
    "colour_candidates": ("int", 1, 32),      # the fit step's knob (2026-12-03), searched with the others since
    "scenes_per_class": ("int", 0, 40),       # train and test frames of the same recordings (2026-12-04; 0: off)
    "base_photometric": ("float", 0.0, 0.5),   # a training parameter (task 0's augmentation), not a generator knob
}


TRAINING_KNOBS = ("base_photometric",)


# The feasibility check, done by hand before this search existed (three of the old constants changed:
# weaker weak and strong light, complex clutter without other classes' objects; finetune RMSE 9.4-10.2 on two
# seeds). Its exact values were not recorded; this is that point in knob terms, queued as trial 1 so the search
# starts from the best point known. It reads nothing the objective does not.
HAND_POINT: dict[str, Any] = {"strong_gain": 1.1, "weak_gain": 0.5, "complex_other_classes": False}


def default_values() -> dict[str, Any]:
    """Today's stream: the knobs' defaults and no photometric augmentation (the "before" trial)."""
    knobs = dataclasses.asdict(DEFAULT_KNOBS)
    return {k: (0.0 if k == "base_photometric" else knobs[k]) for k in SPACE}


def fitted_values() -> dict[str, Any]:
    """The default stand-in's fitted values (core/round1_calibrated.yaml: knobs and task-0 augmentation) over the
    defaults."""
    spec = load_spec(DEFAULT_STREAM)
    return {**default_values(), **spec.generator, "base_photometric": spec.base_photometric}


def before_values() -> dict[str, Any]:
    """round1's values of every knob the fit set: the search's (default_values) and those a fit step added outside
    :data:`SPACE` (``dynnn calibrate --step KNOB=VALUE``), at their defaults."""
    return {**{k: getattr(DEFAULT_KNOBS, k) for k in fitted_values() if k not in SPACE}, **default_values()}


def knob_config(values: Mapping[str, Any], seed: int, base: Mapping[str, Any], overrides: Mapping[str, Any]) -> RunConfig:
    """A run on the round-1 stream (or its mixture: :func:`fit_stream`) with these knob values on top of `base`
    (RunConfig fields as plain data)."""
    generator = {k: v for k, v in values.items() if k not in TRAINING_KNOBS}
    training = {k: v for k, v in values.items() if k in TRAINING_KNOBS}
    data = {**dict(base.get("data", {})), "stream": fit_stream(base)}
    data["generator"] = {**dict(data.get("generator", {})), **generator}
    return from_dict({**dict(base), **training, "data": data, "seed": seed, **overrides})


def trial_configs(values: Mapping[str, Any], seed: int, base: Mapping[str, Any],
                  instance: int | None = None) -> tuple[RunConfig, RunConfig]:
    """(finetune, V2') for one seed (on one generated instance): the two runs a trial's error is read from."""
    if instance is not None:
        base = {**dict(base), "data": {**dict(base.get("data", {})), "data_seed": instance}}
    return knob_config(values, seed, base, {"method": "finetune"}), knob_config(values, seed, base, V2_OVERRIDES)


def suggest(trial: Any, names: Sequence[str]) -> dict[str, Any]:
    """An Optuna trial's values of the searched knobs, each drawn from its range in :data:`SPACE`."""
    out = {}
    for name in names:
        kind, lo, hi = SPACE[name]
        if kind == "float":
            out[name] = trial.suggest_float(name, lo, hi)
        elif kind == "int":
            out[name] = trial.suggest_int(name, int(lo), int(hi))
        else:
            out[name] = trial.suggest_categorical(name, [True, False])
    return out


def checked_change(change: Mapping[str, Any]) -> None:
    """A fit step's change names knobs of the generated stream (or a training knob) with valid values."""
    from dynnn_lib.core.streams import make_knobs

    knobs = {f.name for f in dataclasses.fields(DEFAULT_KNOBS)} | set(TRAINING_KNOBS)
    unknown = [k for k in change if k not in knobs]
    if unknown:
        raise ConfigError(f"--step {unknown[0]}: not a knob of the generated stream (core/streams.Knobs)")
    make_knobs({k: v for k, v in change.items() if k not in TRAINING_KNOBS})  # a bad value fails here


def candidate_values(report: str | Path) -> dict[str, Any]:
    """A search's best (``after.values`` of the calibration.json it wrote), where it differs from the fit in use: the
    change ``dynnn calibrate --confirm`` judges as a fit step on the held-back fit-side instances."""
    path = Path(report)
    try:
        values = json.loads(path.read_text())["after"]["values"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"--confirm {path}: not a search's report (a calibration.json with after.values)") from None
    fitted = fitted_values()
    return {k: v for k, v in values.items() if fitted.get(k) != v}


def knob_table():
    """Each calibrated value before the calibration (round1) and in the default stand-in (a pandas DataFrame)."""
    import pandas as pd

    before, after, shown = before_values(), fitted_values(), pages.knob_value
    return pd.DataFrame([{"knob": k, "round1": shown(before[k]), "round1-calibrated": shown(after[k])} for k in after]
                        ).set_index("knob")
