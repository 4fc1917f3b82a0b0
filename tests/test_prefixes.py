"""Prefix sharing: a run starts from the state another run stored after task t when tasks 0..t were trained alike;
it ends bit-identical to a run trained from scratch, and a prefix never crosses a change of code or data."""
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import tiny
from dynnn_lib import run
from dynnn_lib.engine.cache import PREFIXES, load_outputs, prefix_disk, prune_prefixes

FOUR = {"n_tasks": 4}


def _same_run(a, b) -> None:
    """Two results of one configuration are the same run: every head rule's matrix, the routing, the stored
    test-set outputs, the weights after every task and the logs (less the clock)."""
    assert a.config.key() == b.config.key()
    for rule in a.matrices:
        np.testing.assert_array_equal(a.matrices[rule], b.matrices[rule])
    np.testing.assert_array_equal(a.routing, b.routing)
    oa, ob = load_outputs(a).state(), load_outputs(b).state()
    for name in ("logits", "features"):
        assert len(oa[name]) == len(ob[name]) and all(torch.equal(x, y) for x, y in zip(oa[name], ob[name]))
    assert oa["rows"] == ob["rows"]
    sa, sb = (torch.load(r.path.parent / "snapshots.pt", weights_only=False) for r in (a, b))
    assert [s["n_heads"] for s in sa] == [s["n_heads"] for s in sb]
    for x, y in zip(sa, sb):
        assert x["state"].keys() == y["state"].keys() and all(torch.equal(x["state"][k], y["state"][k]) for k in x["state"])

    def clockless(logs):
        return [{k: ([{e: v for e, v in ep.items() if e != "time_s"} for ep in log["epochs"]] if k == "epochs" else v)
                 for k, v in log.items() if k != "train_s"} for log in logs]

    assert clockless(a.logs) == clockless(b.logs)


def test_two_schedules_share_the_tasks_before_they_differ_and_end_bit_identical(tmp_path):
    late, early = tiny(method="combined", expand_at=[3], data=FOUR), tiny(method="combined", expand_at=[2], data=FOUR)
    assert late.prefix_keys(4)[:2] == early.prefix_keys(4)[:2] and late.prefix_keys(4)[2] != early.prefix_keys(4)[2]
    alone = run(early, tmp_path / "alone")
    assert "reused_tasks" not in alone.timings
    run(late, tmp_path / "tree")                      # stores the states after tasks 0, 1, 2
    shared = run(early, tmp_path / "tree")            # starts after task 1 (kd on task 1 in both)
    assert shared.timings["reused_tasks"] == 2
    _same_run(shared, alone)
    kd = run(tiny(method="kd", data=FOUR), tmp_path / "tree")  # kd and combined expand@[3] agree up to task 2
    assert kd.timings["reused_tasks"] == 3
    _same_run(kd, run(tiny(method="kd", data=FOUR), tmp_path / "kd-alone"))


@pytest.mark.parametrize("method,params", [("finetune", {}), ("ewc", {"mode": "online"}), ("replay", {"memory": 6})])
def test_a_method_with_a_state_resumes_from_its_prefix_bit_identically(method, params, tmp_path):
    cfg = tiny(method=method, method_params=params, data=FOUR)
    alone = run(cfg, tmp_path / "alone")
    part = run(cfg, tmp_path / "shared", stop_after_task=2)
    assert part.status == "interrupted"
    (tmp_path / "shared" / cfg.key() / "checkpoint.pt").unlink()  # only the shared prefix is left
    resumed = run(cfg, tmp_path / "shared")
    assert resumed.timings["reused_tasks"] == 3
    _same_run(resumed, alone)


def test_only_what_acts_on_a_task_enters_its_prefix_key():
    def keys(**kw):
        return tiny(**{"method": "combined", "expand_at": [1, 3], "data": FOUR, **kw}).prefix_keys(4)

    base = keys()  # task 1 expands, task 2 distils, task 3 expands
    assert base[0] == tiny(data=FOUR).base_key()
    hotter = keys(kd_temperature=4.0)                       # acts on the kd task only
    assert hotter[:2] == base[:2] and hotter[2] != base[2]
    scratch = keys(head_init="scratch")                     # acts on the expansions
    assert scratch[0] == base[0] and scratch[1] != base[1]
    assert keys(lr_trick=True)[0] == base[0] and keys(lr_trick=True)[1] != base[1]
    assert keys(method="expand")[:2] == base[:2] and keys(method="expand")[2] != base[2]  # head_ce, not kd, on 2
    assert keys(seed=1)[0] != base[0]
    kd = tiny(method="kd", data=FOUR).prefix_keys(4)
    assert tiny(method="combined", expand_at=[3], data=FOUR).prefix_keys(4)[:3] == kd[:3]
    assert tiny(method="lwf", data=FOUR).prefix_keys(4)[0] == kd[0] and tiny(method="lwf", data=FOUR).prefix_keys(4)[1] != kd[1]
    auto = tiny(method="combined", expand_threshold=0.5, data=FOUR).prefix_keys(4)
    assert auto[0] == kd[0] and auto[1] not in (kd[1], base[1])


def test_no_prefix_is_used_across_a_code_change(tmp_path, monkeypatch):
    cfg = tiny(method="combined", expand_at=[3], data=FOUR)
    run(cfg, tmp_path)
    import dynnn_lib.core.fingerprint as fp

    real = fp.file_digest  # DynamicNN's code edited: task 0 is still shared, none of its tasks
    monkeypatch.setattr(fp, "file_digest", lambda p: real(p) + ("edited" if "dynamicnn" in Path(p).parts else ""))
    assert run(tiny(method="combined", expand_at=[2], data=FOUR), tmp_path).timings["reused_tasks"] == 1
    monkeypatch.setattr(fp, "code_inputs", lambda *a, **k: {"digest": "edited", "files": {}})  # the shared loop
    # changed: nothing shared
    fresh = run(tiny(method="combined", expand_at=[2], data=FOUR), tmp_path)
    assert not fresh.cached and "reused_tasks" not in fresh.timings


def test_no_prefix_is_used_across_a_data_change(tmp_path):
    path = tmp_path / "stream.yaml"
    tasks = [{"illumination": "normal"}, {"illumination": "weak"}, {"occlusion": "50%"}, {"pixel": "small"}]
    path.write_text(yaml.safe_dump({"name": "mine", "tasks": tasks}))
    data = {"stream": str(path), "n_tasks": 4}
    run(tiny(method="combined", expand_at=[3], data=data), tmp_path / "runs")
    assert run(tiny(method="kd", data=data), tmp_path / "runs").timings["reused_tasks"] == 3
    path.write_text(yaml.safe_dump({"name": "mine", "tasks": tasks, "generator": {"weak_gain": 0.5}}))  # same path
    edited = run(tiny(method="combined", expand_at=[2], data=data), tmp_path / "runs")
    assert "reused_tasks" not in edited.timings


def test_prefixes_are_reported_bounded_and_pruned(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    run(tiny(method="kd", data=FOUR), runs)
    disk = prefix_disk(runs)
    assert disk["groups"] == 1 and disk["files"] == 3 and set(disk["by_task"]) == {0, 1, 2} and disk["bytes"] > 0
    monkeypatch.setenv("DYNNN_PREFIX_GB", "0")  # a bound below one group: every other group goes
    run(tiny(method="kd", seed=1, data=FOUR), runs)
    assert prefix_disk(runs)["groups"] == 1 and (runs / PREFIXES / tiny(seed=1, data=FOUR).base_key()).is_dir()
    assert prune_prefixes(runs)[0] == 1 and prefix_disk(runs)["files"] == 0
    again = run(tiny(method="kd", seed=1, data=FOUR).replace(inc_epochs=2), runs)  # nothing left to reuse
    assert "reused_tasks" not in again.timings


def test_sharing_can_be_limited_to_task_0_or_switched_off(tmp_path, monkeypatch):
    late, early = tiny(method="combined", expand_at=[3], data=FOUR), tiny(method="combined", expand_at=[2], data=FOUR)
    monkeypatch.setenv("DYNNN_SHARE", "task0")
    run(late, tmp_path / "a")
    assert run(early, tmp_path / "a").timings["reused_tasks"] == 1
    monkeypatch.setenv("DYNNN_SHARE", "off")
    run(late, tmp_path / "b")
    assert "reused_tasks" not in run(early, tmp_path / "b").timings and not (tmp_path / "b" / PREFIXES).exists()
    monkeypatch.setenv("DYNNN_SHARE", "most")
    from dynnn_lib import ConfigError

    with pytest.raises(ConfigError, match="DYNNN_SHARE='most' is not valid"):
        run(early.replace(seed=3), tmp_path / "c")


def test_a_group_another_process_prunes_while_this_one_counts_is_skipped(tmp_path, monkeypatch):
    import os
    from pathlib import Path

    from dynnn_lib.engine import checkpoints

    root = tmp_path / PREFIXES
    for name in ("kept", "gone"):
        (root / name).mkdir(parents=True)
        (root / name / "0-k.pt").write_bytes(b"x" * 10)
    real_scandir, real_iterdir = os.scandir, Path.iterdir

    def scandir(path):  # the other process's rmtree lands between listing the groups and reading one
        if str(path).endswith("gone"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real_scandir(path)

    def iterdir(self):
        if self.name == "gone":
            raise FileNotFoundError(2, "No such file or directory", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(checkpoints.os, "scandir", scandir)
    assert (prefix_disk(tmp_path)["groups"], prefix_disk(tmp_path)["bytes"]) == (1, 10)
    monkeypatch.setattr(Path, "iterdir", iterdir)
    assert prune_prefixes(tmp_path) == (1, 10) and not (root / "kept").exists()
