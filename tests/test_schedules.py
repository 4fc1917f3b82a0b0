"""The schedule landscape: every expansion schedule trained as a tree of shared prefixes, each prefix once, with the
same results as independent runs; the report's best schedule, ranks, intervals and Pareto front."""
import json

import numpy as np
import pytest

from conftest import tiny
from dynnn_lib import ConfigError, run
from dynnn_lib.engine.executors import TreePlan, train_tree
from dynnn_lib.experiments import schedules as sch
from dynnn_lib.experiments.reproduce import on_its_instance

TINY = {"base_epochs": 1, "inc_epochs": 1, "base_milestones": [1], "inc_milestones": [1], "pretrained": False,
        "data": {"n_tasks": 4, "n_classes": 4, "train_per_class": 8, "test_per_class": 4}}
ON_ITS_INSTANCE = on_its_instance(TINY)  # where the landscape puts a base that names no instance


def test_the_schedules_of_a_stream_and_their_limit():
    assert len(sch.all_schedules(9)) == 256 and sch.all_schedules(3) == [(), (1,), (2,), (1, 2)]
    assert len(sch.all_schedules(9, max_heads=3)) == 1 + 8 + 28 and len(sch.all_schedules(12)) == 2048
    assert sch.all_schedules(9, max_heads=1) == [()]
    with pytest.raises(ConfigError, match="max_heads=0 must be an integer >= 1"):
        sch.all_schedules(9, max_heads=0)
    assert sch.schedule_config(TINY, (), 0).method == "kd"
    assert sch.schedule_config(TINY, (1, 3), 2).params().expand_at == (1, 3)


@pytest.fixture(scope="module")
def land(tmp_path_factory):
    """Every schedule of a 4-task stream, the paper's two and the automatic rule, 2 seeds, trained as a tree."""
    runs = tmp_path_factory.mktemp("landscape") / "runs"
    configs = [sch.schedule_config(ON_ITS_INSTANCE, s, seed) for s in sch.all_schedules(4) for seed in (0, 1)]
    configs += [sch.auto_config(ON_ITS_INSTANCE, seed) for seed in (0, 1)]
    plan = TreePlan.make(configs, runs)
    # per seed: task 0; the states after tasks 1 and 2 (2 + 4) and 8 runs' last task; the rule: tasks 1..3
    assert plan.tree_tasks == 2 * (1 + 2 + 4 + 8 + 3) and plan.independent_tasks == 2 * (1 + 9 * 3)
    result = sch.landscape(TINY, seeds=(0, 1), runs_dir=runs, jobs=2, progress=False)
    assert result.stats.trained_tasks == result.stats.planned_tasks == plan.tree_tasks and not result.stats.failed
    assert [w["task"] for w in result.stats.waves] == [0, 1, 2, "runs"]
    return result, runs


def test_a_tree_trains_each_prefix_once_and_gives_the_independent_runs_results(land, tmp_path, monkeypatch):
    land, runs = land
    configs = [sch.schedule_config(ON_ITS_INSTANCE, s, seed) for s in sch.all_schedules(4) for seed in (0, 1)]
    assert train_tree(configs, runs, jobs=2, progress=False).trained_tasks == 0  # all cached
    monkeypatch.setenv("DYNNN_SHARE", "off")
    for cfg in (configs[5], configs[-1]):
        alone = run(cfg, tmp_path / "alone")
        assert "reused_tasks" not in alone.timings
        for rule, matrix in run(cfg, runs).matrices.items():
            np.testing.assert_array_equal(matrix, alone.matrices[rule])


def test_the_landscape_report_and_the_command(land, tmp_path, capsys):
    land, runs = land
    assert len(land.schedules) == 8 and land.n_tasks == 4
    means = [land.mean(s) for s in land.ranking()]
    assert means == sorted(means, reverse=True) and land.best() == land.ranking()[0]
    front = land.pareto()
    assert front[0] == () and all(len(a) < len(b) and land.mean(a) < land.mean(b) for a, b in zip(front, front[1:]))
    # the automatic rule's runs are the fixed schedule it chose, seed for seed
    for seed, (square, chosen) in enumerate(zip(land.auto, land.auto_schedules)):
        assert square == land.squares[chosen][seed]
    comp = land.comparisons()
    assert set(comp) == {"expand@[1]", "expand@[1, 3]", "the automatic rule (< 0.5)"} and all(p.n == 2 for p in comp.values())
    md, html, js = sch.write_report(land, tmp_path / "reports")
    text = md.read_text()
    assert "winner's curse" in text and "task trainings as a tree" in text and "| 1 | " in text
    assert "Pareto front" in html.read_text() and json.loads(js.read_text())["best"] == list(land.best())
    from dynnn_lib.cli import main

    assert main(["schedules", "--seeds", "2", "--max-heads", "2", "--runs-dir", str(runs),
                 "--out", str(tmp_path / "cli"), "--no-progress", "--jobs", "1",
                 *[f"--set={k}={json.dumps(v)}" for k, v in TINY.items()]]) == 0
    out = capsys.readouterr().out
    assert "4 expansion schedules of the 4-task stream, at most 2 heads" in out and "everything was cached" in out
    assert main(["schedules", "--seeds", "2", "--max-heads", "0", "--runs-dir", str(runs)]) == 2
    assert "max_heads=0 must be an integer >= 1" in capsys.readouterr().err
