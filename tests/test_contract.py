"""The experiment contract: an experiment registered from any module (here, this test module) is planned by
`dynnn plan`, rendered by `dynnn readme` and given its CLI command, with no edit anywhere else; documents are typed
and versioned."""
import json

import pytest

from dynnn_lib.cli import main
from dynnn_lib.core.config import from_dict
from dynnn_lib.core.errors import ConfigError, DynnnError
from dynnn_lib.core.registry import EXPERIMENTS
from dynnn_lib.experiments.contract import Command, Experiment, Settings, planned, register

TINY = {"base_epochs": 1, "inc_epochs": 1, "base_milestones": [1], "inc_milestones": [1], "pretrained": False,
        "data": {"n_tasks": 3, "n_classes": 4, "train_per_class": 8, "test_per_class": 4}}


def _runs(s: Settings):
    return [from_dict({**TINY, "method": "finetune", "seed": seed}) for seed in range(s.seeds)]


def _render(doc) -> str:
    return f"the probe's square: {doc['square']:.2f} over {doc['seeds']} seed(s)"


def _command(args) -> int:
    print(f"probe ran with {args.size}")
    return 0


@pytest.fixture
def probe():
    exp = register(Experiment(name="probe", schema="dynnn.probe/1", runs=_runs, document="probe.json",
                              blocks={"probe-block": _render},
                              command=Command("probe", "a test experiment",
                                              lambda p: p.add_argument("--size", type=int, default=3), _command)))
    yield exp
    EXPERIMENTS.table.pop("probe", None)


def test_a_registered_experiment_is_planned_with_the_others(probe, tmp_path, capsys):
    by = planned(Settings(seeds=2, instances=(1, 2)))
    assert [c.seed for c in by["probe"]] == [0, 1]
    assert {"reproduction", "fidelity", "calibration", "notebooks"} <= set(by)  # the built-ins planned beside it
    assert "baselines" not in by and "schedules" not in by  # their own make targets
    assert main(["plan", "params/tiny.yaml", "--only", "probe", "--seeds", "2", "--runs-dir", str(tmp_path),
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "probe            2 runs, +6 task trainings" in out and "2 runs planned, 0 cached, 2 to train" in out


def test_its_document_fills_its_block_and_a_stale_one_is_refused(probe, tmp_path):
    from dynnn_lib.reports.readme import blocks, fill_files

    reports = tmp_path / "reports"
    reports.mkdir()
    missing: list[str] = []
    assert "probe-block" not in blocks(reports, missing) and "probe.json" in missing
    (reports / "probe.json").write_text(json.dumps({"schema": "dynnn.probe/1", "square": 0.5, "seeds": 2}))
    values = blocks(reports)
    assert values["probe-block"] == "the probe's square: 0.50 over 2 seed(s)"
    doc = tmp_path / "README.md"
    doc.write_text("<!-- BEGIN probe-block -->\nold\n<!-- END probe-block -->\n")
    assert fill_files([doc], {"probe-block": values["probe-block"]}) == [doc]
    assert "0.50 over 2 seed(s)" in doc.read_text()
    (reports / "probe.json").write_text(json.dumps({"schema": "dynnn.probe/0", "square": 0.5}))
    with pytest.raises(DynnnError, match=r"probe.json is dynnn.probe/0, this code reads dynnn.probe/1"):
        blocks(reports)


def test_its_command_is_in_the_cli(probe, capsys):
    assert main(["probe", "--size", "5"]) == 0
    assert "probe ran with 5" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "probe" in capsys.readouterr().out


def test_an_experiment_is_validated_where_it_is_declared():
    with pytest.raises(ConfigError, match=r"schema 'probe/1' must be dynnn.probe/<version>"):
        Experiment(name="probe", schema="probe/1", runs=_runs)
    with pytest.raises(ConfigError, match="names no document"):
        Experiment(name="probe", schema="dynnn.probe/1", runs=_runs, blocks={"x": _render})
    with pytest.raises(ConfigError, match="register takes an Experiment"):
        register("probe")
    with pytest.raises(ConfigError, match=r"instances=\[1, 1\] must be distinct"):
        Settings(instances=(1, 1))
    with pytest.raises(ConfigError, match="seeds=0: need at least 1"):
        Settings(seeds=0)
    with pytest.raises(ConfigError, match="--only nope: no such experiment"):
        planned(Settings(), only=["nope"])


def test_every_builtin_documents_its_schema_and_renders_what_it_declares():
    """Each built-in's schema names it and a version; the blocks it renders are the README's and docs' blocks."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = "".join(p.read_text() for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))])
    exps = {n: e for n, e in EXPERIMENTS.available().items() if n != "probe"}
    assert {"reproduction", "fidelity", "standins", "calibration", "baselines", "schedules", "notebooks"} <= set(exps)
    for e in exps.values():
        assert e.schema.startswith(f"dynnn.{e.name}/")
        for block in e.blocks:
            assert f"<!-- BEGIN {block} -->" in text, f"{e.name}'s block {block} is in no document"
