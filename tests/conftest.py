import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test session uses its own data cache; runs go to a per-test folder."""
    cache = tmp_path_factory.getbasetemp() / "dynnn-cache"
    monkeypatch.setenv("DYNNN_CACHE", str(cache))


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    return tmp_path / "runs"


TINY_DATA = {"n_tasks": 3, "n_classes": 4, "train_per_class": 8, "test_per_class": 4}


def tiny(**overrides):
    """A RunConfig that trains in well under a second."""
    from dynnn_lib import from_dict

    data = {**TINY_DATA, **overrides.pop("data", {})}
    values = {"base_epochs": 1, "inc_epochs": 1, "base_milestones": [1], "inc_milestones": [1],
              "pretrained": False, "method": "finetune", "data": data}
    values.update(overrides)
    return from_dict(values)
