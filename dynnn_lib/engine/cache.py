"""Where runs live and how they are found again: run folders by key, finished results, locks.

A run folder is ``<runs_dir>/<config key>/`` (the key hashes what trains: the training fields, the code training
imports, the method's own code, the data, the environment; see core/config.py and core/fingerprint.py), with the
inputs of its key in ``key.json`` (``dynnn why``). An identical configuration is a cache hit; two processes running
the same one serialise on the folder's file lock. Checkpoints and the prefixes runs share are engine/checkpoints.py's
(re-exported here).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from dynnn_lib.core.config import RunConfig
from dynnn_lib.core.errors import ConfigError, ResultCorrupt
from dynnn_lib.evaluation.outputs import Outputs
from dynnn_lib.engine.results import RunResult, load_result
from dynnn_lib.engine.checkpoints import (PREFIXES, SHARING, has_prefix, load_checkpoint, load_prefix,  # noqa: F401
                                          prefix_disk, prefix_group, prefix_limit_bytes, prune_prefixes,
                                          save_checkpoint, save_prefix, sharing)
from dynnn_lib.core.store import atomic_torch_save, exclusive_lock  # noqa: F401 (exclusive_lock: the run lock)


def default_runs_dir() -> Path:
    return Path(os.environ.get("DYNNN_RUNS", "runs"))


def run_dir(cfg: RunConfig, runs_dir: str | Path | None = None) -> Path:
    return Path(runs_dir or default_runs_dir()) / cfg.key()


def cached_result(cfg: RunConfig, runs_dir: str | Path | None = None) -> RunResult | None:
    """The stored complete result of `cfg` scored under cfg.head_rule, or None. A corrupt file raises
    ResultCorrupt. Evaluation-only fields never retrain: the stored run is re-scored. With ``DYNNN_ACROSS_CPUS=1``
    (reading a colleague's runs folder) a result whose key differs from `cfg`'s by the CPU alone is served too,
    saying so once (``dynnn verify`` checks such a run within the measured cross-CPU tolerance)."""
    path = run_dir(cfg, runs_dir) / "result.json"
    if not path.exists() and across_cpus():
        path = _other_cpu_folder(cfg, Path(runs_dir or default_runs_dir())) / "result.json"
    if not path.exists():
        return None
    res = load_result(path)
    if res.status != "complete":
        return None
    return res.with_rule(cfg.head_rule) if res.matrices else res


def across_cpus() -> bool:
    """Whether results trained on another CPU kind may answer (``DYNNN_ACROSS_CPUS``: 0, the default, or 1)."""
    value = os.environ.get("DYNNN_ACROSS_CPUS", "0")
    if value not in ("0", "1"):
        raise ConfigError(f"DYNNN_ACROSS_CPUS={value!r} must be 0 (this CPU's results only) or 1")
    return value == "1"


def portable_key(inputs: dict) -> str:
    """The key of a run's inputs less the CPU it trained on: equal for one configuration trained on two CPU kinds."""
    from dynnn_lib.core.config import key_of

    env = {**inputs.get("environment", {}), "device": {k: v for k, v in inputs.get("environment", {}).get(
        "device", {}).items() if k != "cpu"}}
    return key_of({**inputs, "environment": env})


def stored_inputs(folder: Path) -> dict | None:
    """The inputs of a stored run's key (``key.json``), or None for a run stored before keys kept them."""
    import json

    try:
        return json.loads((Path(folder) / "key.json").read_text())
    except (OSError, ValueError):
        return None


_WARNED: set[str] = set()


def _other_cpu_folder(cfg: RunConfig, runs_dir: Path) -> Path:
    import warnings

    wanted = portable_key(cfg.key_inputs())
    for folder in sorted(runs_dir.glob("*/key.json")):
        inputs = stored_inputs(folder.parent)
        if inputs and portable_key(inputs) == wanted and (folder.parent / "result.json").exists():
            cpu_name = inputs["environment"]["device"].get("cpu", "?")
            if folder.parent.name not in _WARNED:
                _WARNED.add(folder.parent.name)
                warnings.warn(f"run {folder.parent.name} answers for {cfg.method} seed {cfg.seed}: trained on another "
                              f"CPU ({cpu_name.split('|')[0]}), reused because DYNNN_ACROSS_CPUS=1", stacklevel=3)
            return folder.parent
    return runs_dir / cfg.key()


def load_outputs(result: RunResult) -> Outputs:
    """The stored test-set outputs of a finished run (score them under any head rule: Outputs.score)."""
    if result.path is None:
        raise ConfigError("this result has no run folder; load it with load_result(path)")
    path = result.path.parent / "outputs.pt"
    try:
        return Outputs.from_state(torch.load(path, weights_only=False))
    except FileNotFoundError:
        raise ResultCorrupt(f"{path} is missing; delete the run folder {path.parent} to recompute") from None
