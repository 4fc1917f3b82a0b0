"""Accuracy-matrix metrics (OpenLORIS-Object / Diaz-Rodriguez et al. 2018).

Each metric is a :class:`Metric` in the registry (``core.registry.METRICS``): its name, its label (the glossary's
term), what it reads, whether higher is better, and its docstring, which is its definition (``Metric.definition``).
The built-ins below come through the same door as a plugin's metric: one file with one :func:`metric` function,
imported with ``--import`` (docs/writing-a-method.md). Scoring only: training imports none of this, so a new metric
retrains nothing.

R is N x N: R[i, j] = accuracy on task j's test set after training task i (fractions in [0, 1]).

Each built-in's definition is its function's docstring below: ``average_accuracy`` (A), ``bwt`` (BWT over all
pairs; the final-row mean is ``experiments.fidelity.bwt_final``), ``fwt`` (the upper triangle, not a forward
transfer), ``overall`` (the "square" accuracy), ``final`` and ``diagonal``. Each one's label is its name in every
table, figure and printed line and on every page: the glossary (reports/glossary.py, docs/glossary.md) reads the
labels and definitions from here, so a metric is named and defined in one place.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from dynnn_lib.core import registry
from dynnn_lib.core.errors import ConfigError

READS = ("matrix", "outputs", "logs")


@dataclass(frozen=True)
class Metric:
    """A number per run: ``compute`` reads the accuracy matrix (``reads="matrix"``: an N x N array), the stored
    test outputs (``"outputs"``: an evaluation.Outputs and the head rule) or the per-task logs (``"logs"``)."""

    name: str
    label: str
    compute: Callable[..., float]
    reads: str = "matrix"
    higher_is_better: bool = True
    full: str = ""                     # the label said in full where a figure has room; "" = the label

    @property
    def definition(self) -> str:
        return " ".join((self.compute.__doc__ or self.label).split())

    @property
    def builtin(self) -> bool:
        return self.compute.__module__ == __name__


def metric(label: str | None = None, reads: str = "matrix", higher_is_better: bool = True, full: str = ""
           ) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Register a function as a metric named after it (its docstring: the definition; `label`: its name in every
    table, figure and printed line, and a built-in's term in the glossary; `full`: the label said in full on a
    figure); the function itself is returned, so it stays callable as before."""
    if reads not in READS:
        raise ConfigError(f"metric reads={reads!r} is not valid; choose one of: {', '.join(READS)}")

    def register(fn: Callable[..., float]) -> Callable[..., float]:
        registry.METRICS.add(Metric(fn.__name__, label or fn.__name__, fn, reads, higher_is_better, full))
        return fn
    return register


def get_metric(name: str) -> Metric:
    return registry.METRICS.get(name)


def metric_label(name: str, full: bool = False) -> str:
    """A metric's label, as the metric declares it (`full`: its form said in full, for a figure): its name in every
    table, figure and printed line. A name no registered metric has (a stored result's metric whose plugin is not
    imported now) stays as it is."""
    try:
        m = get_metric(name)
    except ConfigError:
        return name
    return (m.full or m.label) if full else m.label


def builtin_metrics() -> tuple[str, ...]:
    """The built-in metrics (every reader), in the registry's order: the glossary's metric terms."""
    return tuple(k for k, m in registry.METRICS.available().items() if m.builtin)


def matrix_metrics() -> tuple[str, ...]:
    """The registered metrics computed from the accuracy matrix alone (built-ins first)."""
    return tuple(k for k, m in registry.METRICS.available().items() if m.reads == "matrix")


def extra_metrics(every: bool = False) -> tuple[str, ...]:
    """The registered metrics that are not built in (a plugin's): the matrix ones, or `every` one (those reading
    the outputs or the logs too, for views of whole runs: the runs table). Every short view adds them."""
    return tuple(k for k, m in registry.METRICS.available().items()
                 if not m.builtin and (every or m.reads == "matrix"))


def with_extra_metrics(*shown: str, every: bool = False) -> tuple[str, ...]:
    """A short view's columns: the built-ins it chose (`shown`), then every plugin's metric (see extra_metrics)."""
    return (*shown, *extra_metrics(every))


def score_run(matrix, logs: Sequence[dict], outputs: Callable[[], Any], rule: str) -> dict[str, float]:
    """Every registered metric of one run: the matrix ones from `matrix`, then those reading its per-task `logs`
    or its stored outputs (``outputs()``, read only when such a metric is registered; None: NaN) under `rule`."""
    values = summarize(matrix)
    stored: list[Any] = []
    for name, m in registry.METRICS.available().items():
        if m.reads == "logs":
            values[name] = float(m.compute(logs))
        elif m.reads == "outputs":
            stored = stored or [outputs()]
            values[name] = float("nan") if stored[0] is None else float(m.compute(stored[0], rule))
    return values


def _square(matrix) -> np.ndarray:
    r = np.asarray(matrix, dtype=float)
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] < 1:
        raise ValueError(f"an accuracy matrix must be square, got shape {r.shape}")
    return r


@metric("average acc.")
def average_accuracy(matrix) -> float:
    """Mean of the lower triangle including the diagonal: every past and current task after every
    training step."""
    r = _square(matrix)
    return float(r[np.tril_indices(len(r))].mean())


@metric("BWT (all pairs)")
def bwt(matrix) -> float:
    """Mean of R[i, j] - R[j, j] over every pair j < i, not only the last row: how learning later tasks changed
    earlier ones, negative = forgetting (Díaz-Rodríguez et al. 2018's BWT; the final-row mean, Lopez-Paz and
    Ranzato 2017's, is ``experiments.fidelity.bwt_final``)."""
    r = _square(matrix)
    n = len(r)
    if n < 2:
        return 0.0
    i, j = np.tril_indices(n, -1)
    return float((r[i, j] - r[j, j]).mean())


@metric("upper triangle")
def fwt(matrix) -> float:
    """Mean of the strict upper triangle R[i, j], j > i: accuracy on tasks not trained yet (as written in the
    OpenLORIS reference; Diaz-Rodriguez subtract a random-init baseline, which a task-0-trained network has none
    of). Not a transfer measure: forward transfer (Lopez-Paz and Ranzato 2017) is the accuracy before training a
    task minus a reference, so the pages call this the upper triangle."""
    r = _square(matrix)
    if len(r) < 2:
        return 0.0
    return float(r[np.triu_indices(len(r), 1)].mean())


@metric("square", full="square (all N²)")
def overall(matrix) -> float:
    """Mean of all N^2 entries ("square" accuracy in Hikvision's slides)."""
    return float(_square(matrix).mean())


@metric("final row")
def final(matrix) -> float:
    """Mean of the last row: every task after the whole stream."""
    return float(_square(matrix)[-1].mean())


@metric("diagonal")
def diagonal(matrix) -> float:
    """Mean of R[i, i]: plasticity on the task just learnt."""
    return float(np.diag(_square(matrix)).mean())


def summarize(matrix) -> dict[str, float]:
    """Every registered metric that reads the matrix, of one matrix (built-ins first, then plugins')."""
    return {name: get_metric(name).compute(matrix) for name in matrix_metrics()}


def aggregate(matrices: Sequence) -> dict:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single seed) over seeds of the matrix and of every
    metric: ``n_seeds``, ``matrix_mean``, ``matrix_std`` and ``metrics[name] = (mean, std)``."""
    if not len(matrices):
        raise ValueError("aggregate needs at least one accuracy matrix")
    stack = np.stack([_square(m) for m in matrices])
    per_seed = [summarize(m) for m in stack]

    def sd(values: np.ndarray) -> np.ndarray:
        return values.std(0, ddof=1) if len(values) > 1 else np.zeros_like(values[0], dtype=float)

    return {
        "n_seeds": len(stack),
        "matrix_mean": stack.mean(0),
        "matrix_std": sd(stack),
        "metrics": {k: (float(np.mean([s[k] for s in per_seed])), float(sd(np.array([s[k] for s in per_seed]))))
                    for k in per_seed[0]},
    }


# the built-in metrics' names, in the registry's order (a plugin's metric follows them)
METRICS = matrix_metrics()
