"""The paper's published numbers and the variants they belong to (Hikvision's poster and oral slides, IROS 2019).

Everything the paper reports that we compare against lives here; see ``../shared/reference/method_and_dataset.md``
for the sources. The fidelity report (fidelity.py) adds the 9x9 matrices.
"""
from __future__ import annotations

from typing import Any

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

# Baselines the paper does not report, run in the workbench on the same loop, model and stream (issue 10).
BASELINES: dict[str, dict[str, Any]] = {
    "LwF": {"method": "lwf"},
    "EWC": {"method": "ewc"},
    "online EWC": {"method": "ewc", "method_params": {"mode": "online"}},
    "replay (200 images)": {"method": "replay", "method_params": {"memory": 200}},
    "joint (upper bound)": {"method": "joint"},
}
