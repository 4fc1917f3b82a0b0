"""Methods as plugins: the built-ins reproduce their recorded reference runs, a user method runs everywhere."""
import json
from pathlib import Path

import numpy as np
import pytest

from dynnn_lib import run
from dynnn_lib.core.config import from_dict
from dynnn_lib.core.fingerprint import cpu

def _recorder():
    """tests/data/make_reference_runs.py: the cases and the CPU's file name."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_reference_runs", Path(__file__).parent / "data" / "make_reference_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCES = {p.stem: json.loads(p.read_text())
              for p in sorted((Path(__file__).parent / "data" / "reference_runs").glob("*.json"))}
CASES = sorted(next(iter(REFERENCES.values()))["cases"])
from dynnn_lib.engine.verify import ACROSS_CPUS_LOSS_RTOL, ACROSS_CPUS_MATRIX_ATOL  # measured; the source there


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory):
    """Each recorded case run once here (shared by the two comparisons below)."""
    rec = _recorder()
    d = tmp_path_factory.mktemp("reference-runs")
    return {name: run(from_dict({**rec.BASE, **rec.CASES[name]}), d) for name in CASES}


def _recorded(res) -> dict:
    """A run as the reference files record it (tests/data/make_reference_runs.py)."""
    return {"actions": [log["action"] for log in res.logs], "heads": [log["head"] for log in res.logs],
            "task_heads": res.task_heads, "final_loss": [log["final_loss"] for log in res.logs],
            "matrices": {rule: np.nan_to_num(m, nan=-1).tolist() for rule, m in res.matrices.items()},
            "routing": np.nan_to_num(np.asarray(res.routing, dtype=float), nan=-1).tolist()}


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_builtin_methods_reproduce_this_cpus_reference_bit_for_bit(name, reference_runs, tmp_path):
    """Same code, same CPU, same thread count: the same numbers, bit for bit (matrices under every head rule,
    routing, heads, actions, final losses): against this CPU's recorded reference where one exists, and always
    against the same case trained a second time here, in a fresh folder (so nothing skips on a new CPU; record a
    reference for it with tests/data/make_reference_runs.py)."""
    rec = _recorder()
    again = run(from_dict({**rec.BASE, **rec.CASES[name]}), tmp_path)
    res = reference_runs[name]
    assert not again.cached and _recorded(again) == _recorded(res)
    mine = rec.slug(cpu())
    if mine in REFERENCES:
        case = REFERENCES[mine]["cases"][name]
        assert [log["action"] for log in res.logs] == case["actions"]
        assert [log["head"] for log in res.logs] == case["heads"]
        assert res.task_heads == case["task_heads"]
        for rule, expected in case["matrices"].items():
            np.testing.assert_array_equal(np.nan_to_num(res.matrices[rule], nan=-1),
                                          np.nan_to_num(np.array(expected, dtype=float), nan=-1), err_msg=rule)
        np.testing.assert_array_equal(res.routing, np.array(case["routing"], dtype=float))
        assert [log["final_loss"] for log in res.logs] == case["final_loss"]


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_builtin_methods_agree_with_other_cpus_references_within_measured_tolerance(name, reference_runs):
    """Against every other CPU's recorded reference (the AMD family-25 one was made by the single-file methods.py
    before the plugins, commit 7f1e4ca): the same actions and heads, matrices within one test image per task, final
    losses within ACROSS_CPUS_LOSS_RTOL (the measurement above)."""
    others = {k: v for k, v in REFERENCES.items() if k != _recorder().slug(cpu())}
    assert others, "no other CPU's reference to compare with"
    res = reference_runs[name]
    for machine, ref in others.items():
        case = ref["cases"][name]
        assert [log["action"] for log in res.logs] == case["actions"], machine
        assert [log["head"] for log in res.logs] == case["heads"], machine
        for rule, expected in case["matrices"].items():
            np.testing.assert_allclose(res.matrices[rule], np.array(expected, dtype=float),
                                       atol=ACROSS_CPUS_MATRIX_ATOL, err_msg=f"{machine} {rule}")
        np.testing.assert_allclose([log["final_loss"] for log in res.logs], case["final_loss"],
                                   rtol=ACROSS_CPUS_LOSS_RTOL, err_msg=machine)


# ------------------------------------------------------------------ a user's method
import dataclasses  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from conftest import tiny  # noqa: E402
from dynnn_lib import ConfigError, Method, register, run_many  # noqa: E402
from dynnn_lib.methods import available_methods, get_method  # noqa: E402
from dynnn_lib.core.registry import _REGISTRY  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@register
class HeadOnly(Method):
    """Trains only the first head on each new task (the trunk frozen), CE scaled by a factor."""

    name = "head_only_test"

    @dataclasses.dataclass(frozen=True)
    class Params:
        scale: float = 1.0

    def train_task(self, ctx):
        y = ctx.y
        ctx.model.set_trunk_trainable(False)
        net = torch.nn.Sequential(ctx.model.trunk, ctx.model.heads[0])
        epochs = ctx.fit(net, lambda out, idx: {"ce": self.params.scale * F.cross_entropy(out, y[idx])},
                         ctx.task.train_x)
        return ctx.log("head", epochs, trunk_changed=False)


def test_a_registered_method_runs_through_run_and_run_many_with_its_parameters(tmp_path):
    cfg = tiny(method="head_only_test", method_params={"scale": 0.5})
    assert cfg.method_params == {"scale": 0.5} and cfg.params().scale == 0.5
    res = run(cfg, tmp_path)
    assert [log["action"] for log in res.logs] == ["full", "head", "head"]
    assert res.logs[1]["epochs"][0]["ce"] > 0 and "ce" in res.logs[2]["epochs"][0]
    again = run_many([cfg, cfg.replace(seed=1)], tmp_path, jobs=2, progress=False)  # workers import this module
    assert again[0].cached and not again[1].cached
    assert tiny(method="head_only_test").key() != cfg.key()  # parameters are part of the key


def test_method_parameters_are_validated_in_one_line():
    with pytest.raises(ConfigError, match=r"unknown parameter method_params.scal; valid names: scale"):
        tiny(method="head_only_test", method_params={"scal": 2})
    with pytest.raises(ConfigError, match="method_params.memory=0 must be a positive number of images"):
        tiny(method="replay", method_params={"memory": 0})
    with pytest.raises(ConfigError, match=r"expand_at=\[1\] is not a parameter of method 'lwf'"):
        tiny(method="lwf", expand_at=[1])
    with pytest.raises(ConfigError, match="is not registered; choose one of: .*head_only_test"):
        tiny(method="nope")
    # switching method drops the other method's parameters; another method's parameters are not in its config
    assert tiny(method="replay", method_params={"memory": 5}).replace(method="lwf").method_params == \
        {"alpha": 1.0, "temperature": 2.0}
    assert "kd_head" not in tiny(method="lwf").to_dict() and "kd_head" not in tiny(method="lwf").method_params
    assert tiny(method="kd", kd_head="worst").replace(method="lwf") == tiny(method="lwf")
    assert tiny(method="kd").key() != tiny(method="kd", kd_head="worst").key()


EDITED = """
import torch.nn.functional as F
from dynnn_lib.methods import Method, register


@register
class Edited(Method):
    name = "edited_test"

    def train_task(self, ctx):
        y = ctx.y
        return ctx.log("x", ctx.fit(ctx.network(), lambda out, idx: SCALE * F.cross_entropy(out, y[idx]),
                                    ctx.task.train_x))
"""


def test_editing_a_method_changes_only_its_own_runs_keys(tmp_path, monkeypatch):
    """A method's own code is in its runs' keys: a module by its syntax tree, a notebook class by its bytecode."""
    import importlib

    from dynnn_lib.core.fingerprint import class_fingerprint

    (tmp_path / "edited_plugin.py").write_text(EDITED.replace("SCALE", "1.0"))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        importlib.import_module("edited_plugin")
        before, kd = tiny(method="edited_test").key(), tiny(method="kd").key()
        (tmp_path / "edited_plugin.py").write_text(EDITED.replace("SCALE", "2.0") + "\n# a comment\n")
        assert tiny(method="edited_test").key() != before
        (tmp_path / "edited_plugin.py").write_text(EDITED.replace("SCALE", "1.0") + "\n# only a comment\n")
        assert tiny(method="edited_test").key() == before
        assert tiny(method="kd").key() == kd

        def in_notebook(scale: str):  # a class defined in a notebook cell has no file: its bytecode counts
            ns = {"__name__": "__main__"}
            exec(EDITED.replace("SCALE", scale), ns)
            return class_fingerprint(ns["Edited"])

        assert in_notebook("1.0") == in_notebook("1.0") != in_notebook("2.0")
    finally:
        _REGISTRY.pop("edited_test", None)
        sys.modules.pop("edited_plugin", None)


def test_editing_dynamicnn_changes_the_keys_of_its_variants_only(monkeypatch):
    """DynamicNN is a method like the others: its package is in the keys of expand, kd and combined, never in the
    shared code fingerprint, so editing it keeps every other method's cached runs."""
    from dynnn_lib.core import fingerprint

    others = ("finetune", "lwf", "ewc", "replay", "joint")
    variants = {"expand": {"expand_at": [1]}, "kd": {}, "combined": {"expand_at": [1]}}
    keys = lambda: {m: tiny(method=m, **variants.get(m, {})).key() for m in others + tuple(variants)}  # noqa: E731
    real = fingerprint.file_digest
    before = keys()
    monkeypatch.setattr(fingerprint, "file_digest",
                        lambda p: real(p) + ("# edited" if "dynamicnn" in Path(p).parts else ""))
    after = keys()
    assert all(after[m] == before[m] for m in others)
    assert all(after[m] != before[m] for m in variants)


def test_cli_imports_a_plugin_file_and_runs_it(tmp_path, capsys):
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text('''
import torch.nn.functional as F
from dynnn_lib.methods import Method, register


@register
class Mine(Method):
    """Finetune with a name of my own."""

    name = "mine"

    def train_task(self, ctx):
        y = ctx.y
        return ctx.log("mine", ctx.fit(ctx.network(), lambda out, idx: F.cross_entropy(out, y[idx]), ctx.task.train_x))
''')
    from dynnn_lib.cli import main

    assert main(["run", "--method", "mine", "--preset", "tiny", "--seeds", "1"]) == 2   # not imported: one line
    err = capsys.readouterr().err
    assert "method='mine' is not registered" in err and "--import" in err and len(err.strip().splitlines()) == 1
    env = {**__import__("os").environ, "DYNNN_RUNS": str(tmp_path / "runs")}
    out = subprocess.run([sys.executable, "-m", "dynnn_lib.cli", "run", "--import", str(plugin), "--method", "mine",
                          "--preset", "tiny", "--seeds", "1", "--json", "--no-progress"],
                         capture_output=True, text=True, env=env, cwd=ROOT)  # (workers importing a plugin: test above)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["config"]["method"] == "mine"
    try:
        assert main(["methods", "--import", str(plugin)]) == 0
        assert "mine       Finetune with a name of my own." in capsys.readouterr().out
    finally:
        _REGISTRY.pop("mine", None)
        sys.modules.pop("my_plugin", None)


def test_a_package_declares_a_method_under_the_entry_point_group(tmp_path, monkeypatch):
    (tmp_path / "epmethods.py").write_text(
        "from dynnn_lib.methods.finetune import Finetune\n\nclass FromPackage(Finetune):\n"
        "    \"\"\"A method another package ships.\"\"\"\n    name = 'from_package'\n")
    dist = tmp_path / "epmethods-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: epmethods\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[dynnn.methods]\nfrom_package = epmethods:FromPackage\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert "from_package" in available_methods()
        assert run(tiny(method="from_package"), tmp_path / "runs").status == "complete"
    finally:
        _REGISTRY.pop("from_package", None)


# ------------------------------------------------------------------ the baselines
@pytest.mark.slow
def test_baselines_train_the_whole_network_and_say_what_they_break(tmp_path):
    lwf = run(tiny(method="lwf"), tmp_path)
    assert lwf.logs[1]["action"] == "lwf" and lwf.logs[1]["epochs"][0]["kd"] >= 0
    ewc = run(tiny(method="ewc", method_params={"ewc_lambda": 1e4}), tmp_path)
    assert ewc.logs[2]["epochs"][0]["reg"] > 0          # the penalty acts once the weights move from task 0's
    replay = run(tiny(method="replay", method_params={"memory": 10}), tmp_path)
    assert replay.logs[-1]["extra"]["memory"] == 10      # bounded: 32 images seen, 10 kept
    joint = run(tiny(method="joint"), tmp_path)
    assert [log["extra"]["images"] for log in joint.logs[1:]] == [64, 96]
    body = json.loads((tmp_path / joint.config.key() / "result.json").read_text())
    assert body["method"]["incremental"] is False and "not incremental" in " ".join(body["method"]["marks"])
    assert json.loads((tmp_path / replay.config.key() / "result.json").read_text())["method"]["uses_past_data"]


def test_a_method_that_reads_old_data_must_declare_it(tmp_path):
    @register
    class Sneaky(Method):
        name = "sneaky_test"

        def train_task(self, ctx):
            ctx.past_tasks()

    try:
        with pytest.raises(ConfigError, match="does not declare uses_past_data"):
            run(tiny(method="sneaky_test"), tmp_path)
    finally:
        _REGISTRY.pop("sneaky_test", None)


@pytest.mark.slow
@pytest.mark.parametrize("method,params", [("ewc", {"mode": "online"}), ("replay", {"memory": 6})])
def test_stateful_methods_resume_bit_identically_and_share_task_0(method, params, tmp_path):
    cfg = tiny(method=method, method_params=params, data={"n_tasks": 4})
    whole = run(cfg, tmp_path / "whole")
    run(tiny(method="finetune", data={"n_tasks": 4}), tmp_path / "shared")   # trains the shared task 0
    part = run(cfg, tmp_path / "shared", stop_after_task=1)
    assert part.status == "interrupted"
    resumed = run(cfg, tmp_path / "shared")
    assert resumed.timings.get("task0_shared")
    np.testing.assert_array_equal(resumed.matrix, whole.matrix)


# ------------------------------------------------------------------ runs as data
def test_runs_table_export_and_show(tmp_path, capsys):
    runs = tmp_path / "runs"
    run_many([tiny(method="finetune"), tiny(method="combined", expand_at=[1])], runs, progress=False)
    from dynnn_lib import runs_table

    df = runs_table(runs)
    assert sorted(df["method"]) == ["combined", "finetune"] and set(df["status"]) == {"complete"}
    assert df.loc[df["method"] == "combined", "expanded_at"].item() == "1"
    long = runs_table(runs, long=True)
    assert len(long) == 2 * 5 * 9 and set(long.columns) >= {"run", "rule", "row", "column", "accuracy"}
    row = long[(long["method"] == "finetune") & (long["rule"] == "router") & (long["row"] == 2) & (long["column"] == 0)]
    assert row["accuracy"].item() == run(tiny(method="finetune"), runs).matrix[2, 0]
    from dynnn_lib.cli import main

    assert main(["export", "--runs-dir", str(runs), "--format", "parquet", "--out", str(tmp_path / "x")]) == 0
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "x" / "matrices.parquet")) == len(long)
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    listing = capsys.readouterr().out
    assert "2 runs (2 complete)" in listing and "combined" in listing
    key = df.loc[df["method"] == "finetune", "run"].item()
    assert main(["show", key, "--runs-dir", str(runs), "--png", str(tmp_path / "m.png"), "--html",
                 str(tmp_path / "m.html"), "--rule", "oracle"]) == 0
    assert "head rule oracle" in capsys.readouterr().out and (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    assert "plotly" in (tmp_path / "m.html").read_text()
    assert main(["runs", "--runs-dir", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_training_log_records_loss_parts_lr_and_time_per_epoch(tmp_path):
    cfg = tiny(method="combined", expand_at=[1], inc_epochs=3, inc_milestones=[2], data={"n_tasks": 3})
    res = run(cfg, tmp_path)
    kd = res.logs[2]
    assert kd["action"] == "kd" and len(kd["epochs"]) == 3
    assert {"ce", "kd", "loss", "lr", "time_s"} <= set(kd["epochs"][0])
    assert [e["lr"] for e in kd["epochs"]] == pytest.approx([0.003, 0.003, 0.0003])
    assert kd["epochs"][-1]["loss"] == pytest.approx(kd["epochs"][-1]["ce"] + kd["epochs"][-1]["kd"])
    from dynnn_lib.reports import figures as viz

    fig = viz.training_log(res.logs)
    assert {t.name for t in fig.data} >= {"ce", "kd", "loss", "learning rate"}
