"""Runs as data: every cached run as one row of a pandas DataFrame, and the matrices in long form.

>>> from dynnn_lib import runs_table
>>> df = runs_table()                      # one row per run: method, key parameters, seed, status, metrics...
>>> long = runs_table(long=True)           # run, rule, row, column, accuracy: for pandas, seaborn, your tools

``dynnn runs`` prints the table, ``dynnn export --format csv|parquet`` writes both forms.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from dynnn_lib.engine.cache import default_runs_dir, prefix_disk, prefix_limit_bytes
from dynnn_lib.core.errors import ConfigError, DynnnError
from dynnn_lib.engine.results import RunResult, load_result, method_card
from dynnn_lib.core.registry import metric_names as registered_metrics
from dynnn_lib.evaluation.routing import get_rule

# configuration fields shown as columns (the rest are in the `config` column as JSON)
# (the method's own parameters: the `method_params` column, those that differ from the method's defaults)
KEY_FIELDS = ("method", "lr_trick", "backbone", "pretrained", "base_epochs", "inc_epochs")


def stored_results(runs_dir: str | Path | None = None) -> list[RunResult]:
    """Every readable result.json under runs_dir (complete and failed; damaged ones are skipped with a warning)."""
    import warnings

    root = Path(runs_dir or default_runs_dir())
    if not root.is_dir():
        raise ConfigError(f"runs folder {root} does not exist; run something first or pass --runs-dir")
    out = []
    for path in sorted(root.glob("*/result.json")):
        try:
            out.append(load_result(path))
        except DynnnError as e:
            warnings.warn(f"skipping {path}: {e}", stacklevel=2)
    return out


def runs_table(runs_dir: str | Path | None = None, long: bool = False, rule: str | None = None):
    """One row per stored run (``long=False``), or one row per matrix entry and head rule (``long=True``).

    rule: score every run under this head rule (default: each run's own ``head_rule``)."""
    import json

    import numpy as np
    import pandas as pd

    if rule is not None:
        get_rule(rule)  # an unknown rule: one line naming the registered ones
    rows, cells, metric_names = [], [], registered_metrics()
    for res in stored_results(runs_dir):
        if rule is not None and res.status == "complete":
            res = res.with_rule(rule)
        cfg = res.config.to_dict()
        key = res.path.parent.name if res.path else res.config.key()
        when = dt.datetime.fromtimestamp(res.path.stat().st_mtime) if res.path else None
        metrics = res.metrics if res.status == "complete" else {}
        card = method_card(res.config)
        rows.append({
            "run": key, "method": res.config.method,
            **{f: _plain(cfg.get(f)) for f in KEY_FIELDS[1:]},
            "method_params": json.dumps(_changed_params(res.config), sort_keys=True),
            "n_tasks": len(res.task_names), "data_source": res.config.data.source,
            "data_seed": res.config.data.params.get("data_seed"), "seed": res.config.seed, "head_rule": res.config.head_rule,
            "status": res.status, **{m: metrics.get(m, np.nan) for m in metric_names},
            "expanded_at": _plain(res.expanded_at), "n_heads": len(set(res.task_heads)) if res.task_heads else None,
            "train_s": float(sum(res.timings.get("train_s", []))), "marks": "; ".join(card.get("marks", [])),
            "when": when, "commit": (res.provenance.get("commit") or "")[:10], "error": res.error,
            "config": json.dumps(cfg, sort_keys=True),
        })
        if long:
            for name, m in (res.matrices or {res.config.head_rule: res.matrix}).items():
                for i, j in zip(*np.nonzero(~np.isnan(m))):
                    cells.append({"run": key, "method": res.config.method, "seed": res.config.seed, "rule": name,
                                  "row": int(i), "column": int(j), "accuracy": float(m[i, j])})
    if long:
        return pd.DataFrame(cells, columns=["run", "method", "seed", "rule", "row", "column", "accuracy"])
    return pd.DataFrame(rows)


def _changed_params(cfg) -> dict:
    """The method's parameters that differ from its defaults (as plain data)."""
    import dataclasses

    defaults = dataclasses.asdict(cfg.method_class().Params())
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.method_params.items() if defaults.get(k) != v}


def _plain(value):
    """Lists as "1,3" so the table stays flat (CSV, parquet)."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return value


def export(runs_dir: str | Path | None, out: str | Path, fmt: str = "csv") -> list[Path]:
    """Write runs.<fmt> (one row per run) and matrices.<fmt> (long form) into folder `out`."""
    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"--format {fmt!r}: choose csv or parquet")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError("parquet needs pyarrow: pip install 'dynnn[parquet]' (or use --format csv)") from None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in (("runs", runs_table(runs_dir)), ("matrices", runs_table(runs_dir, long=True))):
        path = out / f"{name}.{fmt}"
        df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path, index=False)
        written.append(path)
    return written


def disk_usage(runs_dir: str | Path | None = None) -> dict:
    """What a runs folder takes: finished runs, unfinished checkpoints, shared prefixes (engine/cache.py), bytes."""
    root = Path(runs_dir or default_runs_dir())
    if not root.is_dir():
        raise ConfigError(f"runs folder {root} does not exist; run something first or pass --runs-dir")
    out = {"root": str(root), "runs": 0, "runs_bytes": 0, "checkpoints": 0, "checkpoint_bytes": 0}
    for folder in root.iterdir():
        if not folder.is_dir() or folder.name.startswith("_"):
            continue
        files = [f for f in folder.iterdir() if f.is_file()]
        ck = folder / "checkpoint.pt"
        if ck.exists():
            out["checkpoints"] += 1
            out["checkpoint_bytes"] += ck.stat().st_size
        if (folder / "result.json").exists():
            out["runs"] += 1
            out["runs_bytes"] += sum(f.stat().st_size for f in files if f.name != "checkpoint.pt")
    out["prefixes"] = prefix_disk(root)
    out["prefix_limit"] = prefix_limit_bytes()
    out["bytes"] = out["runs_bytes"] + out["checkpoint_bytes"] + out["prefixes"]["bytes"]
    return out
