"""The command line: runs, the reproduction table, and one-line errors."""
import json

import pytest

from dynnn_lib.cli import main
from dynnn_lib.reports import blocks

TINY = ["--preset", "tiny", "--no-progress", "--jobs", "1"]


def test_run_prints_matrix_and_metrics(tmp_path, capsys):
    rc = main(["run", "--method", "combined", "--expand", "1", "--seeds", "2", "--runs-dir", str(tmp_path), *TINY])
    out = capsys.readouterr().out
    assert rc == 0
    assert "after\\test" in out and "±" in out
    assert all(f"{name}: " in out for name in ("square", "BWT (all pairs)", "upper triangle"))  # the glossary's terms
    assert "expanded at: [[1], [1]]" in out


def test_run_json_output(tmp_path, capsys):
    assert main(["run", "--method", "finetune", "--seeds", "1", "--json", "--runs-dir", str(tmp_path), *TINY]) == 0
    body = json.loads(capsys.readouterr().out)
    assert len(body["matrix_mean"]) == 3 and set(body["metrics"]) >= {"overall", "bwt", "fwt"}


def test_reproduce_writes_the_poster_table(tmp_path, capsys):
    out = tmp_path / "reports"
    assert main(["reproduce", "--seeds", "1", "--runs-dir", str(tmp_path / "runs"), "--out", str(out), *TINY]) == 0
    text = capsys.readouterr().out
    for name in ("finetune", "DynamicNN (no expand)", "DynamicNN (expand@1)", "DynamicNN (expand@1) + LR trick"):
        assert f"| {name} |" in text
    assert "93.84" in text and "the paper's ordering; a description of these seeds, not a claim" in text
    for rule in ("router", "oracle", "mean_prob"):        # one table per head rule, from the same runs
        assert f"## Head rule: {rule}" in text
    assert (out / "reproduction.md").exists()
    payload = json.loads((out / "reproduction.json").read_text())
    assert payload["schema"] == "dynnn.reproduction/2" and payload["instance"] == 1 and payload["seeds"] == [0]
    rules = payload["rules"]
    assert sorted(rules) == ["mean_prob", "oracle", "router"] and all(len(v) == 5 for v in rules.values())
    assert rules["router"]["finetune"]["keys"] == rules["oracle"]["finetune"]["keys"]
    assert (out / "reproduction.md").read_text().strip() == blocks.reproduction_md(payload).strip()  # rendered from it


@pytest.mark.parametrize("argv, message", [
    (["run", "--method", "combined", "--expand", "1", "1"], "lists a task twice"),
    (["run", "--method", "combined", "--expand", "9"], "out of range"),
    (["run", "--method", "combined", "--expand", "-1"], "negative task index"),
    (["run", "--set", "base_epochs=0"], "base_epochs=0 must be a positive integer"),
    (["run", "--set", "typo=1"], "unknown parameter typo"),
    (["run", "--set", "novalue"], "must look like key=value"),
    (["run", "--seeds", "0"], "need at least 1 seed"),
    (["run", "--config", "/nonexistent.yaml"], "does not exist"),
    (["run", "--data-source", "openloris-round1", "--data-root", "/nonexistent"], "does not exist"),
])
def test_errors_are_one_line_with_exit_code_2(tmp_path, capsys, argv, message):
    rc = main([*argv, "--runs-dir", str(tmp_path), *TINY])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("dynnn: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_yaml_config_file(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("method: combined\nexpand_at: [2]\n")
    assert main(["run", "--config", str(cfg), "--seeds", "1", "--runs-dir", str(tmp_path), *TINY]) == 0
    assert "expanded at: [[2]]" in capsys.readouterr().out
    cfg.write_text("method: [unclosed\n")
    assert main(["run", "--config", str(cfg), "--runs-dir", str(tmp_path), *TINY]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_show_verifies_a_result(tmp_path, capsys):
    main(["run", "--seeds", "1", "--runs-dir", str(tmp_path), *TINY])
    capsys.readouterr()
    run_dir = next(p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert main(["show", str(run_dir)]) == 0
    assert "status: complete" in capsys.readouterr().out


def test_baselines_with_adds_your_method_paired_against_dynamicnn(monkeypatch):
    """`dynnn baselines --import mymod --with mine`: the method joins the compared variants, on the same seeds."""
    from dynnn_lib.cli import main
    from dynnn_lib.experiments import baselines

    seen = {}

    class Stop(Exception):
        pass

    def fake_reproduce(base, seeds, jobs, runs_dir, progress, variants):
        seen.update(variants=variants, seeds=list(seeds))
        raise Stop

    monkeypatch.setattr(baselines, "reproduce", fake_reproduce)
    with pytest.raises(Stop):
        main(["baselines", "--with", "finetune_copy", "--with", "finetune", "--seeds", "3", "--no-progress"])
    assert seen["variants"]["finetune_copy"] == {"method": "finetune_copy"}
    assert baselines.OURS in seen["variants"] and seen["seeds"] == [0, 1, 2]
    assert {k: v for k, v in seen["variants"].items() if k != "finetune_copy"} == baselines.COMPARED
