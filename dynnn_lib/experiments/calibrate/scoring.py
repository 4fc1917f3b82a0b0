"""The fit's arithmetic on top of the objective (experiments/objective.py, fixed before any fit): the exact bounds the
search prunes by, a side's score with its held-out parts, and the split of an error over instances into bias and
spread. Apart from the search so that the evaluation and the fit steps score alike.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from dynnn_lib.core.errors import ConfigError
from dynnn_lib.experiments.objective import LOWER, calibration_entries, calibration_error, held_out, skill
from dynnn_lib.experiments.paper import PAPER_DYNAMICNN, PAPER_FINETUNE
from dynnn_lib.reports import pages

ENTRIES = calibration_entries(PAPER_FINETUNE[0], PAPER_DYNAMICNN[0]).size  # the objective's 54: 45 finetune, 9 V2'
FINETUNE_ENTRIES = LOWER[0].size  # the first 45 of them: finetune's, on and below the diagonal


def lower_bound(finetune: np.ndarray) -> float:
    """What the objective is at least, from the finetune matrix alone: the same sum of squares over 54 entries
    without the V2' diagonal's (which can only add to it). Lets a hopeless trial skip its V2' runs."""
    return float(np.sqrt(np.sum(((np.asarray(finetune, float) - PAPER_FINETUNE[0])[LOWER] * 100) ** 2) / ENTRIES))


def squared_errors(finetune_rows: np.ndarray, upto: int) -> float:
    """The sum of squared errors (points²) of finetune's entries on and below the diagonal in rows 0..upto (the rows
    a run has produced after task `upto`)."""
    ft = np.asarray(finetune_rows, float)
    n = len(ft)
    rows = np.arange(n)[:, None] <= upto
    mask = np.tril(np.ones((n, n), bool)) & rows
    return float(np.sum(((ft - PAPER_FINETUNE[0])[mask] * 100) ** 2))


def partial_bound(partial_sse: Sequence[float]) -> float:
    """What the objective (the mean over fit instances of each one's RMSE over 54 entries) is at least, given each
    instance's sum of squared errors so far: the entries still to come can only add to every sum. Exact."""
    return float(np.mean([math.sqrt(max(s, 0.0) / ENTRIES) for s in partial_sse]))


def bias_and_spread(finetunes: Sequence[Any], v2s: Sequence[Any]) -> dict[str, float]:
    """Where the objective's error over several instances comes from, in points on its 54 entries: ``bias``, the
    RMSE of the mean over the instances (what no number of instances averages away; the part a knob must move) and
    ``spread``, the root mean over the entries of their variance between instances (n - 1). Each instance's squared
    objective is about bias² + spread² on average: a stand-in whose spread is small beside its bias is wrong in
    the same way on every draw, and making instances alike cannot help it."""
    if len(finetunes) < 2 or len(finetunes) != len(v2s):
        raise ConfigError("bias and spread need the matrices of two or more instances, finetune and V2' each")
    entries = np.array([calibration_entries(f, v) for f, v in zip(finetunes, v2s)])
    return {"bias": float(np.sqrt(np.mean(entries.mean(0) ** 2))),
            "spread": float(np.sqrt(np.mean(entries.var(0, ddof=1))))}


def score(finetune: Any, v2: Any, values: Mapping[str, Any], seeds: int) -> dict[str, Any]:
    """One side of the report: mean finetune and V2' matrices scored with the fixed objective, its skill and the
    held-out RMSE."""
    ft, v2 = np.asarray(finetune, float), np.asarray(v2, float)
    entries = calibration_entries(ft, v2)
    return {"values": dict(values), "seeds": seeds, "finetune": ft.tolist(), "v2": v2.tolist(),
            "rmse_calibration": calibration_error(ft, v2), "skill": skill(calibration_error(ft, v2)),
            "rmse_finetune_45": float(np.sqrt(np.mean(entries[:FINETUNE_ENTRIES] ** 2))),
            "rmse_v2_diagonal_9": float(np.sqrt(np.mean(entries[FINETUNE_ENTRIES:] ** 2))),
            "held_out_rmse_v2_offdiagonal_36": held_out(v2)}


INSTANCE_KEYS = (*pages.RMSE_LABELS, "skill")  # what each instance's score keeps: the four RMSEs and the objective's skill
RMSE_LABELS = pages.RMSE_LABELS  # their labels, where the pages render them
