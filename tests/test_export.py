"""dynnn export --to mlflow | tensorboard: what was written is read back with each library's own reader (MLflow's
client, TensorBoard's EventAccumulator) and compared with the stored run; exporting again writes nothing twice."""
import csv
import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny

from dynnn_lib import run
from dynnn_lib.cli import main
from dynnn_lib.reports import trackers


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """One small stored run whose incremental tasks train two epochs (two learning rates) and expand a head."""
    runs = tmp_path_factory.mktemp("export") / "runs"
    res = run(tiny(method="combined", expand_at=[1], inc_epochs=2, inc_milestones=[1]), runs)
    assert res.status == "complete"
    return runs, res


def _mlflow_runs(uri: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("dynnn")
    return client, client.search_runs([exp.experiment_id])


def test_mlflow_export_reads_back_the_key_configuration_metrics_matrix_and_heatmap(stored, tmp_path):
    runs, res = stored
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    assert main(["export", "--to", "mlflow", "--runs-dir", str(runs), "--mlflow-uri", uri]) == 0
    client, found = _mlflow_runs(uri)
    assert len(found) == 1
    got, key = found[0], runs.glob("*/result.json").__next__().parent.name
    assert got.data.tags["dynnn.key"] == key and got.info.status == "FINISHED"
    assert got.data.params["method"] == "combined" and got.data.params["data.params.n_classes"] == "4"
    assert got.data.params["method_params.expand_at"] == "[1]"
    assert got.data.metrics["overall"] == pytest.approx(res.metrics["overall"])
    for j in range(3):   # column j of the matrix: task j tested after each task (before it too: forward transfer)
        history = client.get_metric_history(got.info.run_id, f"acc/task{j}")
        assert [m.step for m in history] == [0, 1, 2]
        assert [m.value for m in history] == pytest.approx(res.matrix[:, j].tolist())
    learned = client.get_metric_history(got.info.run_id, "acc/just_learned")
    assert [m.value for m in learned] == pytest.approx(np.diag(res.matrix).tolist())
    assert {a.path for a in client.list_artifacts(got.info.run_id)} == {"matrix.csv", "matrices.json", "heatmap.png"}
    local = Path(client.download_artifacts(got.info.run_id, "", str(tmp_path / "dl")))
    assert (local / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    header, *rows = csv.reader(io.StringIO((local / "matrix.csv").read_text()))
    assert header == ["after", *res.task_names] and [r[0] for r in rows] == res.task_names
    np.testing.assert_allclose([[float(v) for v in r[1:]] for r in rows], res.matrix, atol=1e-6)
    assert str(tmp_path / "store" / "artifacts") in got.info.artifact_uri  # beside the database, not in the cwd


def test_mlflow_export_twice_writes_once_and_a_changed_result_replaces_its_run(stored, tmp_path):
    runs, res = stored
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert trackers.to_mlflow([res], uri) == {res.config.key(): "written"}
    assert trackers.to_mlflow([res], uri) == {res.config.key(): "unchanged"}
    changed = dataclasses.replace(res, matrix=res.matrix * 0.5)
    assert trackers.to_mlflow([changed], uri) == {res.config.key(): "replaced"}
    client, found = _mlflow_runs(uri)
    assert len(found) == 1
    assert found[0].data.metrics["overall"] == pytest.approx(res.metrics["overall"] * 0.5)


def test_tensorboard_export_reads_back_per_epoch_loss_and_lr_per_task_and_the_matrix_rows(stored, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs, res = stored
    logdir = tmp_path / "tb"
    assert main(["export", "--to", "tensorboard", "--runs-dir", str(runs), "--logdir", str(logdir)]) == 0
    (folder,) = [p for p in logdir.iterdir() if p.is_dir()]
    board = EventAccumulator(str(folder)).Reload()
    epochs = [e for log in res.logs for e in log["epochs"]]
    assert len(epochs) == 1 + 2 + 2   # task 0: one epoch; tasks 1 and 2: two each
    loss = board.Scalars("task1/loss")
    assert [s.step for s in loss] == [1, 2]    # the epochs counted over the whole stream
    assert [s.value for s in loss] == pytest.approx([e["loss"] for e in res.logs[1]["epochs"]], rel=1e-6)
    assert [s.value for s in board.Scalars("task2/lr")] == pytest.approx([0.003 * f for f in (1, 0.1)], rel=1e-6)
    row = [s for s in board.Scalars("acc/task0")]
    assert [s.step for s in row] == [0, 1, 2]
    assert [s.value for s in row] == pytest.approx(res.matrix[:, 0].tolist(), rel=1e-6)
    files = sorted(folder.iterdir())
    assert main(["export", "--to", "tensorboard", "--runs-dir", str(runs), "--logdir", str(logdir)]) == 0
    assert sorted(folder.iterdir()) == files and len(EventAccumulator(str(folder)).Reload().Scalars("task1/loss")) == 2


def test_an_unknown_target_or_a_missing_package_is_one_line(stored, capsys, monkeypatch):
    runs, _ = stored
    assert main(["export", "--to", "wandb", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--to 'wandb': choose files, mlflow, tensorboard" in err
    monkeypatch.setitem(__import__("sys").modules, "mlflow.tracking", None)   # as if mlflow were not installed
    assert main(["export", "--to", "mlflow", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the mlflow package: pip install 'dynnn[export]'" in err
