"""Where runs live and how they are found again: run folders by key, the shared task 0, checkpoints, locks.

A run folder is ``<runs_dir>/<config key>/`` (the key hashes the training fields, the code and data fingerprints,
the method's own code and the thread count; see core/config.py and core/fingerprint.py). An identical configuration is a
cache hit; two processes running the same one serialise on the folder's file lock.

* ``checkpoint.pt`` - after every finished task: weights, outputs, snapshots, logs and the method's state so far;
  a killed run continues from the first unfinished task and ends bit-identical on CPU;
* ``_base/<base key>.pt`` - task 0 is trained the same way by every method, so it is trained once per
  ``base_key`` and shared (without any method's state).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from dynnn_lib.core.config import RunConfig
from dynnn_lib.core.errors import ConfigError, ResultCorrupt
from dynnn_lib.evaluation.outputs import Outputs
from dynnn_lib.engine.results import RunResult, load_result
from dynnn_lib.core.store import atomic_torch_save, exclusive_lock  # noqa: F401 (exclusive_lock: the run lock)


def default_runs_dir() -> Path:
    return Path(os.environ.get("DYNNN_RUNS", "runs"))


def run_dir(cfg: RunConfig, runs_dir: str | Path | None = None) -> Path:
    return Path(runs_dir or default_runs_dir()) / cfg.key()


def cached_result(cfg: RunConfig, runs_dir: str | Path | None = None) -> RunResult | None:
    """The stored complete result of `cfg` scored under cfg.head_rule, or None. A corrupt file raises
    ResultCorrupt. Evaluation-only fields never retrain: the stored run is re-scored."""
    path = run_dir(cfg, runs_dir) / "result.json"
    if not path.exists():
        return None
    res = load_result(path)
    if res.status != "complete":
        return None
    return res.with_rule(cfg.head_rule) if res.matrices else res


def load_outputs(result: RunResult) -> Outputs:
    """The stored test-set outputs of a finished run (score them under any head rule: Outputs.score)."""
    if result.path is None:
        raise ConfigError("this result has no run folder; load it with load_result(path)")
    path = result.path.parent / "outputs.pt"
    try:
        return Outputs.from_state(torch.load(path, weights_only=False))
    except FileNotFoundError:
        raise ResultCorrupt(f"{path} is missing; delete the run folder {path.parent} to recompute") from None


def base_path(cfg: RunConfig, folder: Path) -> Path:
    return folder.parent / "_base" / f"{cfg.base_key()}.pt"


def save_checkpoint(cfg: RunConfig, folder: Path, state: dict) -> None:
    atomic_torch_save(state, folder / "checkpoint.pt")
    path = base_path(cfg, folder)
    if state["completed"] == 1 and not path.exists():  # task 0, shared with every method (no method state)
        atomic_torch_save({**{k: v for k, v in state.items() if k != "method_state"}, "base_key": cfg.base_key()},
                          path)


def load_checkpoint(cfg: RunConfig, folder: Path) -> dict | None:
    """This run's own checkpoint, else the shared task 0, else None (a damaged or foreign file is ignored)."""
    return (_load_state(folder / "checkpoint.pt", "key", cfg.key(), "checkpoint", "starting the run from task 0")
            or _load_state(base_path(cfg, folder), "base_key", cfg.base_key(), "shared task-0 state",
                           "training task 0"))


def _load_state(path: Path, field: str, expected: str, what: str, otherwise: str) -> dict | None:
    if not path.exists():
        return None
    try:
        state = torch.load(path, weights_only=False)
        if state.get(field) != expected:
            raise ValueError("it belongs to another configuration")
        return state
    except Exception as e:
        warnings.warn(f"ignoring {what} {path} ({e}); {otherwise}", stacklevel=3)
        return None
