import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

_SESSION_DIR = None


def pytest_configure(config):
    """nbval kernels inherit the environment: point their data cache and run cache at a throw-away folder, and let
    them import the files beside the notebooks (07: novelty.py) from tests/nbval, as nbval_refs does."""
    global _SESSION_DIR
    from dynnn_lib.workbench.nbval_refs import importable_notebook_files

    _SESSION_DIR = tempfile.mkdtemp(prefix="dynnn-tests-")
    os.environ.setdefault("DYNNN_CACHE", os.path.join(_SESSION_DIR, "cache"))
    os.environ["DYNNN_RUNS"] = os.path.join(_SESSION_DIR, "runs")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["PYTHONPATH"] = importable_notebook_files()


def pytest_unconfigure(config):
    if _SESSION_DIR:
        shutil.rmtree(_SESSION_DIR, ignore_errors=True)


def pytest_collectstart(collector):
    """nbval compares text; plotly JSON embeds the plotly version's template and widgets carry random ids."""
    if collector.path is not None and collector.path.suffix == ".ipynb" and hasattr(collector, "skip_compare"):
        collector.skip_compare += ("text/html", "application/vnd.plotly.v1+json",
                                   "application/vnd.jupyter.widget-view+json", "stderr")


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
