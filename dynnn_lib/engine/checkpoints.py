"""Where a run's training state is kept between tasks: its own checkpoint and the prefixes runs share.

* ``checkpoint.pt`` - after every finished task: weights, outputs, snapshots, logs, the method's state and Adam's
  (``optimizer_state="keep"``) so far; a killed run continues from the first unfinished task and ends bit-identical
  on CPU;
* ``_prefix/<base key>/<t>-<prefix key>.pt`` - the state after task t, shared by every run whose tasks 0..t are
  trained alike (``RunConfig.prefix_keys``: task 0 is the same for every method; two expansion schedules agree up
  to the first task they differ on). Task 0's file holds the state task 0's training left (weights, log, Adam's
  state for keep runs) *before* any method consolidated it (``Method.end_task``), with its test-set outputs only
  when the method that stored it left the weights as they were (``evaluated``); a run resuming from it consolidates
  and, where that changed the weights or nothing was evaluated, evaluates task 0 itself. Task t's file holds what
  task t changed (the weights, the new test-set outputs, the log, the method's state) linked to task t-1's, so a
  prefix costs about one head and one row of outputs. ``DYNNN_SHARE`` = all | task0 | off; ``DYNNN_PREFIX_GB``
  bounds the disk (least recently used groups pruned); ``dynnn runs --disk`` and ``dynnn prune`` report and free it.

Training reads and writes these (engine/train.py); finding finished results is engine/cache.py's.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import torch

from dynnn_lib.core.config import RunConfig
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.core.store import atomic_torch_save


def load_checkpoint(cfg: RunConfig, folder: Path) -> dict | None:
    """This run's own checkpoint, or None (a damaged or foreign file is ignored)."""
    return _load_state(folder / "checkpoint.pt", "key", cfg.key(), "checkpoint", "starting from the longest shared prefix")


def save_checkpoint(cfg: RunConfig, folder: Path, state: dict) -> None:
    atomic_torch_save(state, folder / "checkpoint.pt")


# ------------------------------------------------------------------ prefixes: the state after task t, shared
PREFIXES = "_prefix"
SHARING = ("all", "task0", "off")  # DYNNN_SHARE: every task's state (default), task 0 only (as before), nothing


def sharing() -> str:
    """Which states runs share (``DYNNN_SHARE``): results are the same either way (tested); only the work differs."""
    value = os.environ.get("DYNNN_SHARE", "all")
    if value not in SHARING:
        raise ConfigError(f"DYNNN_SHARE={value!r} is not valid; choose one of: {', '.join(SHARING)}")
    return value


def prefix_limit_bytes() -> float:
    """The disk the prefixes may take (``DYNNN_PREFIX_GB``, default 2 GB); beyond it the least recently used
    groups are pruned after each save."""
    text = os.environ.get("DYNNN_PREFIX_GB", "2")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"DYNNN_PREFIX_GB={text!r} must be a number of gigabytes >= 0, e.g. 2")
    return value * 1e9


def prefix_group(cfg: RunConfig, runs_root: Path) -> Path:
    """The folder of every prefix that grows from cfg's task 0 (one per base key: seed, stream, base training)."""
    return Path(runs_root) / PREFIXES / cfg.base_key()


def _prefix_file(group: Path, t: int, key: str) -> Path:
    return group / f"{t}-{key}.pt"


def has_prefix(cfg: RunConfig, runs_root: str | Path, t: int, key: str) -> bool:
    """Whether the state after task t under prefix key `key` (of cfg's task 0) is stored."""
    return _prefix_file(prefix_group(cfg, Path(runs_root)), t, key).exists()


def save_prefix(group: Path, keys: list[str], t: int, payload: dict) -> bool:
    """Store the state after task t under keys[t] (task 0: the state training left, see the module's docstring;
    later tasks: what the task changed, linked to keys[t-1]); False when it is stored already or sharing is off."""
    mode = sharing()
    path = _prefix_file(group, t, keys[t])
    if mode == "off" or (mode == "task0" and t > 0):
        return False
    if path.exists() and not (t == 0 and payload.get("evaluated") and not _evaluated(path)):
        return False  # stored already (task 0 stored without an evaluation gains one: the same weights)
    atomic_torch_save({**payload, "prefix_key": keys[t], "parent": keys[t - 1] if t else None, "task": t}, path)
    limit = prefix_limit_bytes()
    if prefix_disk(group.parent.parent)["bytes"] > limit:
        prune_prefixes(group.parent.parent, limit, keep={group})
    return True


def _evaluated(path: Path) -> bool:
    try:
        return bool(torch.load(path, weights_only=False).get("evaluated", True))
    except Exception:  # noqa: BLE001 - a damaged file is replaced
        return False


def load_prefix(group: Path, keys: list[str]) -> dict | None:
    """The state after the longest stored prefix of `keys`, as a checkpoint (``completed`` tasks): task 0's state
    with the changes of tasks 1..t applied; None when none is stored. A damaged or missing link is skipped for a
    shorter prefix (with a warning)."""
    mode = sharing()
    usable = 0 if mode == "off" else 1 if mode == "task0" else len(keys)
    for t in range(usable - 1, -1, -1):
        if not _prefix_file(group, t, keys[t]).exists():
            continue
        try:
            state = _assemble(group, keys, t)
        except Exception as e:  # noqa: BLE001 - a damaged link means a shorter prefix (or none)
            warnings.warn(f"ignoring the shared prefix {keys[t]} in {group} ({e}); trying a shorter one", stacklevel=2)
            continue
        with contextlib.suppress(OSError):
            os.utime(group)  # its last use, for pruning
        return state
    return None


def _assemble(group: Path, keys: list[str], t: int) -> dict:
    parts = [torch.load(_prefix_file(group, i, keys[i]), weights_only=False) for i in range(t + 1)]
    for i, part in enumerate(parts):
        if part.get("prefix_key") != keys[i] or part.get("task") != i:
            raise ValueError(f"task {i}'s link belongs to another prefix")
    state = dict(parts[0])
    state["logs"], state["timings"] = list(state["logs"]), {k: list(v) for k, v in state["timings"].items()
                                                           if k in ("train_s", "eval_s")}
    state["model"] = dict(state["model"])
    if not state.get("evaluated", True):  # task 0 as training left it, consolidated by another method: no outputs
        if t > 0:
            raise ValueError("task 0's link holds no evaluation to continue from")
        return {**state, "completed": 1}
    state["snapshots"] = list(state["snapshots"])
    out = state["outputs"] = {**state["outputs"], "logits": list(state["outputs"]["logits"]),
                              "features": list(state["outputs"]["features"]), "rows": list(state["outputs"]["rows"]),
                              "domains": list(state["outputs"]["domains"])}
    for d in parts[1:]:
        state["model"].update(d["snapshot"]["state"])
        state["n_heads"] = d["snapshot"]["n_heads"]
        state["snapshots"].append(d["snapshot"])
        out["logits"] += d["logits"]
        out["features"] += d["features"]
        out["rows"].append(d["row"])
        out["domains"].append(d["domain"])
        state["logs"].append(d["log"])
        state["timings"]["train_s"].append(d["train_s"])
        state["timings"]["eval_s"].append(d["eval_s"])
        state["method_state"] = d["method_state"]
        if "optimizer_state" in d:
            state["optimizer_state"] = d["optimizer_state"]
    state["completed"] = t + 1
    return state


def prefix_disk(runs_root: str | Path) -> dict:
    """What the prefixes take: groups, files, bytes, and files and bytes per task depth."""
    root = Path(runs_root) / PREFIXES
    out = {"groups": 0, "files": 0, "bytes": 0, "by_task": {}}
    if not root.is_dir():
        return out
    for group in os.scandir(root):
        if not group.is_dir():
            continue
        try:  # another process may prune a group while this one counts it: it is gone, not an error
            entries = [(f.name, f.stat().st_size) for f in os.scandir(group.path) if f.name.endswith(".pt")]
        except FileNotFoundError:
            continue
        out["groups"] += 1
        for name, size in entries:
            t = int(name.split("-", 1)[0]) if name.split("-", 1)[0].isdigit() else -1
            files, total = out["by_task"].get(t, (0, 0))
            out["by_task"][t] = (files + 1, total + size)
            out["files"] += 1
            out["bytes"] += size
    return out


def prune_prefixes(runs_root: str | Path, max_bytes: float = 0.0, keep: set[Path] = frozenset()) -> tuple[int, int]:
    """Remove prefix groups, least recently used first, until the prefixes take at most `max_bytes` (0: all of
    them); groups in `keep` (in use) stay. Results are never touched: a pruned prefix is trained again when a run
    needs it. Returns (groups removed, bytes freed)."""
    import shutil

    root = Path(runs_root) / PREFIXES
    if not root.is_dir():
        return 0, 0
    groups = []
    for g in root.iterdir():
        try:  # a group another process pruned meanwhile is gone already
            if g.is_dir():
                size = sum(f.stat().st_size for f in g.iterdir() if f.is_file())
                groups.append((g.stat().st_mtime, g, size))
        except FileNotFoundError:
            continue
    total, removed, freed = sum(s for *_, s in groups), 0, 0
    for _, g, size in sorted(groups, key=lambda x: (x[0], x[1].name)):
        if total <= max_bytes:
            break
        if g in keep:
            continue
        shutil.rmtree(g, ignore_errors=True)
        total, removed, freed = total - size, removed + 1, freed + size
    return removed, freed


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
