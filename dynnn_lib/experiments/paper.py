"""The paper's published numbers and the variants they belong to (Hikvision's poster and oral slides, IROS 2019).

Everything the paper reports that we compare against lives here; see ``../shared/reference/method_and_dataset.md``
for the sources: the headline square scores, the two published 9x9 matrices, the variants behind them; also
our own automatic-expansion variant and the baselines, defined once here so every report names them alike.
"""
from __future__ import annotations

from typing import Any

import numpy as np

# The paper's five headline variants (poster/oral slide 9), as overrides of RunConfig.
VARIANTS: dict[str, dict[str, Any]] = {
    "finetune": {"method": "finetune"},
    "DynamicNN (no expand)": {"method": "kd"},
    "DynamicNN (expand@1)": {"method": "combined", "expand_at": (1,)},
    "DynamicNN (no expand) + LR trick": {"method": "kd", "lr_trick": True},
    "DynamicNN (expand@1) + LR trick": {"method": "combined", "expand_at": (1,), "lr_trick": True},
}

# The paper's reported "square performance" for the same variants (percent).
PAPER_SCORES: dict[str, float] = {
    "finetune": 93.84,
    "DynamicNN (no expand)": 94.50,
    "DynamicNN (expand@1)": 95.75,
    "DynamicNN (no expand) + LR trick": 96.01,
    "DynamicNN (expand@1) + LR trick": 96.83,
}

_NAN = float("nan")


def _table(rows: list[list[tuple[float, float]]]) -> tuple[np.ndarray, np.ndarray]:
    n = len(rows)
    mean, std = np.full((n, n), _NAN), np.full((n, n), _NAN)
    for i, row in enumerate(rows):
        for j, (m, s) in enumerate(row):
            mean[i, j], std[i, j] = m / 100, s / 100
    return mean, std


# ../shared/reference/method_and_dataset.md §1.5 (poster/slide 8), percent, mean ± std; upper triangle not reported
PAPER_FINETUNE = _table([
    [(99.71, .06)],
    [(85.61, .72), (99.91, .10)],
    [(97.93, .40), (80.92, 2.61), (99.88, .10)],
    [(76.87, 1.19), (68.28, 1.04), (79.01, 1.89), (99.99, .01)],
    [(87.40, .76), (91.02, .84), (86.81, 1.08), (96.93, .53), (99.95, .03)],
    [(88.29, .85), (89.33, .99), (84.16, .54), (81.67, 1.70), (82.71, 2.02), (99.90, .02)],
    [(99.00, .23), (95.62, 1.04), (99.07, .25), (98.75, .35), (94.97, .86), (95.81, .59), (99.72, .08)],
    [(92.01, .74), (97.01, .09), (89.40, .95), (87.62, 2.25), (93.58, 1.40), (99.30, .01), (91.21, 1.06), (99.91, .05)],
    [(98.54, .28), (96.09, .49), (99.53, .01), (92.72, 1.88), (92.69, 1.22), (93.54, .21), (95.57, .89), (91.31, .83),
     (99.82, .02)],
])
PAPER_DYNAMICNN = _table([
    [(99.30, .18)],
    [(97.13, .46), (98.42, .39)],
    [(99.25, .28), (95.92, .33), (97.88, .30)],
    [(96.74, .57), (95.74, .28), (94.69, .24), (99.21, .06)],
    [(94.50, .35), (97.08, .08), (93.12, .60), (99.31, .20), (97.10, .51)],
    [(93.63, .68), (97.25, .14), (92.08, .93), (99.26, .24), (96.82, .55), (90.89, .42)],
    [(96.77, .93), (98.01, .69), (96.15, 1.38), (99.35, .20), (97.58, .53), (93.41, 1.21), (98.26, .49)],
    [(96.82, .39), (98.96, .24), (96.08, .57), (97.83, .53), (97.84, .43), (96.43, .84), (97.85, .18), (96.09, .75)],
    [(97.98, .33), (99.10, .33), (98.00, .35), (98.17, .45), (97.94, .38), (95.33, 1.06), (98.38, .19), (94.97, .85),
     (97.97, .26)],
])
V2_NAME = "DynamicNN V2' (worst head, expand@[1,3])"
V2_OVERRIDES = {"method": "combined", "expand_at": [1, 3], "kd_head": "worst"}
# Our automatic rule (issue: expansion that protects what is known): expand when the old model's *routed* accuracy
# on the new task, before training, is below 0.5; distil elsewhere into the head the new task routes to.
AUTO_NAME = "DynamicNN (auto < 0.5, routed KD)"
AUTO_OVERRIDES = {"method": "combined", "expand_threshold": 0.5, "kd_head": "routed"}

# Baselines the paper does not report, run in the workbench on the same loop, model and stream (issue 10).
BASELINES: dict[str, dict[str, Any]] = {
    "LwF": {"method": "lwf"},
    "EWC": {"method": "ewc"},
    "online EWC": {"method": "ewc", "method_params": {"mode": "online"}},
    "replay (200 images)": {"method": "replay", "method_params": {"memory": 200}},
    "joint (upper bound)": {"method": "joint"},
}
