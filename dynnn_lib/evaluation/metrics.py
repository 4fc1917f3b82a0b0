"""Accuracy-matrix metrics (OpenLORIS-Object / Diaz-Rodriguez et al. 2018).

R is N x N: R[i, j] = accuracy on task j's test set after training task i (fractions in [0, 1]).

* ``average_accuracy`` (A)  - mean of the lower triangle including the diagonal: every past and current task
  after every training step;
* ``bwt``   - mean of R[i, j] - R[j, j] over every pair j < i, not only the last row: how learning later tasks
  changed earlier ones, negative = forgetting (Díaz-Rodríguez et al. 2018's BWT; the final-row mean, Lopez-Paz and
  Ranzato 2017's, is ``experiments.fidelity.bwt_final``);
* ``fwt``   - mean of the strict upper triangle R[i, j], j > i: accuracy on tasks not trained yet (as written in
  the OpenLORIS reference; Diaz-Rodriguez subtract a random-init baseline, which a task-0-trained network has none of).
  Not a transfer measure: forward transfer (Lopez-Paz and Ranzato 2017) is the accuracy before training a task minus
  a reference, so the pages call this the upper triangle;
* ``overall`` ("square" accuracy in Hikvision's slides) - mean of all N^2 entries;
* ``final`` - mean of the last row: every task after the whole stream;
* ``diagonal`` - mean of R[i, i]: plasticity on the task just learnt.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

METRICS = ("average_accuracy", "bwt", "fwt", "overall", "final", "diagonal")


def _square(matrix) -> np.ndarray:
    r = np.asarray(matrix, dtype=float)
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] < 1:
        raise ValueError(f"an accuracy matrix must be square, got shape {r.shape}")
    return r


def average_accuracy(matrix) -> float:
    r = _square(matrix)
    return float(r[np.tril_indices(len(r))].mean())


def bwt(matrix) -> float:
    r = _square(matrix)
    n = len(r)
    if n < 2:
        return 0.0
    i, j = np.tril_indices(n, -1)
    return float((r[i, j] - r[j, j]).mean())


def fwt(matrix) -> float:
    r = _square(matrix)
    if len(r) < 2:
        return 0.0
    return float(r[np.triu_indices(len(r), 1)].mean())


def overall(matrix) -> float:
    return float(_square(matrix).mean())


def final(matrix) -> float:
    return float(_square(matrix)[-1].mean())


def diagonal(matrix) -> float:
    return float(np.diag(_square(matrix)).mean())


def summarize(matrix) -> dict[str, float]:
    """All metrics of one matrix."""
    return {name: globals()[name](matrix) for name in METRICS}


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
                    for k in METRICS},
    }
