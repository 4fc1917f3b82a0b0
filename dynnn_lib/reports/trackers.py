"""Stored runs written where researchers already look at runs: an MLflow store and TensorBoard event files.

``dynnn export --to mlflow`` gives each stored run one MLflow run, found again by its key (the tag ``dynnn.key``):
the configuration as parameters (flattened: ``data.params.n_classes``), the summary metrics, the per-task metrics
with the task as the step (``acc/task{j}`` at step i is row i of the accuracy matrix), the matrices as CSV and JSON
and the heatmap as a PNG. ``dynnn export --to tensorboard`` writes one event folder per run: per-epoch ``task{t}/loss``
(and its parts) and ``task{t}/lr`` with the epoch counted over the whole stream as the step, the same matrix rows.

Both are idempotent, because a researcher re-exports after every batch of runs: a run already written with the
same content (the digest of its stored result, tag ``dynnn.digest``) is skipped; one whose result changed (a
failed run completed) is replaced. Both are functions of results (engine/results.py ``RunResult``, duck-typed
here): the command line reads the runs folder and hands its results in.
"""
from __future__ import annotations

import csv
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from dynnn_lib.core.errors import ConfigError

EXTRA = "pip install 'dynnn[export]' (make setup installs it)"
EXPERIMENT = "dynnn"


def _need(module: str, what: str):
    """Import an optional package, or say in one line which extra brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{what} needs the {module.split('.')[0]} package: {EXTRA}") from None


def run_key(res) -> str:
    """The run's key as the runs folder names it (the configuration's key for a result never stored)."""
    return res.path.parent.name if res.path else res.config.key()


def digest(res) -> str:
    """What the export of a run depends on: its stored result, hashed (same digest: nothing to write again)."""
    return hashlib.sha256(json.dumps(res.to_payload(), sort_keys=True, default=str).encode()).hexdigest()[:16]


def flat_params(values: dict, prefix: str = "") -> dict[str, str]:
    """A nested configuration as MLflow parameters: ``{"data": {"n_classes": 4}}`` -> ``{"data.n_classes": "4"}``
    (lists and None as JSON, so a parameter reads as it is written in a configuration file)."""
    out: dict[str, str] = {}
    for k, v in values.items():
        if isinstance(v, dict) and v:
            out.update(flat_params(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, str) else json.dumps(v)
    return out


def task_metrics(res) -> Iterator[tuple[str, int, float]]:
    """(name, task, value) per task: each row of the matrix (``acc/task{j}`` at step i), the mean over the tasks
    seen so far (``acc/seen_mean``), the accuracy on the task just learned (``acc/just_learned``), and the task's
    training: its last epoch's loss (``train/final_loss``) and seconds (``train/seconds``)."""
    m = res.matrix
    for i, row in enumerate(m):
        if np.isnan(row).all():
            continue
        yield from ((f"acc/task{j}", i, float(v)) for j, v in enumerate(row) if not np.isnan(v))
        yield "acc/seen_mean", i, float(np.nanmean(row[: i + 1]))
        if not np.isnan(row[i]):
            yield "acc/just_learned", i, float(row[i])
    for log in res.logs:
        if log.get("final_loss") is not None:
            yield "train/final_loss", log["task"], float(log["final_loss"])
        yield "train/seconds", log["task"], float(log.get("train_s", 0.0))


def epoch_scalars(res) -> Iterator[tuple[str, int, float]]:
    """(tag, step, value) per epoch of every task's training: ``task{t}/loss``, its parts (``task{t}/ce``,
    ``task{t}/kd``...) and ``task{t}/lr``, the step counting epochs over the whole stream, so the tasks' curves
    follow one another on one axis as in the training figure (reports/figures.py ``training_log``)."""
    step = 0
    for log in res.logs:
        for e in log.get("epochs", []):
            for k, v in e.items():
                if k not in ("epoch", "time_s") and v is not None:
                    yield f"task{log['task']}/{k}", step, float(v)
            step += 1


def _matrix_files(res, folder: Path) -> list[Path]:
    """The matrix as CSV (rows = after task i, columns = tested on task j), every head rule's as JSON, the heatmap."""
    from dynnn_lib.reports.tables import matrix_png

    names = list(res.task_names) or [str(j) for j in range(len(res.matrix))]
    table = folder / "matrix.csv"
    with table.open("w", newline="") as f:   # csv quotes a task name that holds a comma
        out = csv.writer(f)
        out.writerow(["after", *names])
        out.writerows([names[i], *("" if np.isnan(v) else f"{v:.6f}" for v in row)] for i, row in enumerate(res.matrix))
    every = folder / "matrices.json"
    every.write_text(json.dumps({k: [[None if np.isnan(v) else float(v) for v in r] for r in m]
                                 for k, m in (res.matrices or {res.config.head_rule: res.matrix}).items()}, indent=1))
    title = f"{res.config.method} seed {res.config.seed}, head rule {res.config.head_rule}"
    return [table, every, matrix_png(res.matrix, folder / "heatmap.png", title)]


# ------------------------------------------------------------------------------------------------------ MLflow
def default_mlflow_uri(runs_dir: str | Path) -> str:
    """A local SQLite store beside the runs (``<runs>/_mlflow/mlflow.db``): no server; ``mlflow ui`` opens it."""
    return f"sqlite:///{(Path(runs_dir) / '_mlflow' / 'mlflow.db').resolve()}"


def _artifact_root(uri: str) -> str | None:
    """Where a SQLite store's artifacts go: beside its database (MLflow's default is ./mlartifacts under the
    current folder, which would scatter them). Other stores keep their own default."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///"):]).parent / "artifacts").resolve().as_uri()


def _experiment(client, name: str, uri: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=_artifact_root(uri))


def _batches(items: list, size: int) -> Iterator[list]:
    """MLflow takes at most 100 parameters and 1000 metrics per call."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _log_mlflow_run(client, experiment_id: str, res, key: str, stamp: str) -> str:
    from mlflow.entities import Metric, Param

    cfg = res.config
    run = client.create_run(experiment_id, run_name=f"{cfg.method} seed {cfg.seed} {key[:8]}", tags={
        "dynnn.key": key, "dynnn.digest": stamp, "dynnn.method": cfg.method, "dynnn.status": res.status,
        "dynnn.commit": str(res.provenance.get("commit") or ""), "dynnn.head_rule": cfg.head_rule})
    rid, now = run.info.run_id, int(time.time() * 1000)
    for chunk in _batches([Param(k, v[:6000]) for k, v in flat_params(cfg.to_dict()).items()], 100):
        client.log_batch(rid, params=chunk)
    summary = res.metrics if res.status == "complete" else {}
    metrics = [Metric(k, float(v), now, 0) for k, v in summary.items() if np.isfinite(v)]
    metrics += [Metric(name, v, now, step) for name, step, v in task_metrics(res)]
    for chunk in _batches(metrics, 1000):
        client.log_batch(rid, metrics=chunk)
    with tempfile.TemporaryDirectory() as tmp:
        for path in _matrix_files(res, Path(tmp)):
            client.log_artifact(rid, str(path))
    client.set_terminated(rid, status="FINISHED" if res.status == "complete" else "FAILED")
    return rid


def to_mlflow(results: Iterable, uri: str, experiment: str = EXPERIMENT) -> dict[str, str]:
    """Write each result as one MLflow run of `experiment` in the store at `uri`; returns key -> what happened
    (``written``, ``replaced`` or ``unchanged``)."""
    tracking = _need("mlflow.tracking", "dynnn export --to mlflow")
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    client = tracking.MlflowClient(tracking_uri=uri)
    exp = _experiment(client, experiment, uri)
    done = {}
    for res in results:
        key, stamp = run_key(res), digest(res)
        old = client.search_runs([exp], filter_string=f"tags.`dynnn.key` = '{key}'")
        if any(r.data.tags.get("dynnn.digest") == stamp for r in old):
            done[key] = "unchanged"
            continue
        for r in old:
            client.delete_run(r.info.run_id)
        _log_mlflow_run(client, exp, res, key, stamp)
        done[key] = "replaced" if old else "written"
    return done


# ------------------------------------------------------------------------------------------------- TensorBoard
def to_tensorboard(results: Iterable, logdir: str | Path) -> dict[str, str]:
    """Write each result's scalars into ``<logdir>/<method>-seed<seed>-<key>/`` (one TensorBoard run per run);
    returns key -> ``written``, ``replaced`` or ``unchanged``. A run folder holds a ``dynnn.json`` naming the key
    and digest it was written from; a changed result's folder is emptied first (events would otherwise append)."""
    import shutil

    board = _need("torch.utils.tensorboard", "dynnn export --to tensorboard")
    done = {}
    for res in results:
        key, stamp = run_key(res), digest(res)
        folder = Path(logdir) / f"{res.config.method}-seed{res.config.seed}-{key}"
        mark = folder / "dynnn.json"
        previous = json.loads(mark.read_text()) if mark.exists() else None
        if previous and previous.get("digest") == stamp:
            done[key] = "unchanged"
            continue
        if folder.exists():
            shutil.rmtree(folder)
        with board.SummaryWriter(log_dir=str(folder)) as writer:
            for tag, step, value in [*epoch_scalars(res), *task_metrics(res)]:
                writer.add_scalar(tag, value, step)
        mark.write_text(json.dumps({"key": key, "digest": stamp}))
        done[key] = "replaced" if previous else "written"
    return done
