"""Runs: results, cache, resume after a kill, atomic/checked files, numerical faults."""
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny
from dynnn_lib import ResultCorrupt, TrainingDiverged, load_result, run, run_seeds
from dynnn_lib.core.config import from_dict


def test_run_produces_full_matrix_and_documented_result_file(runs_dir):
    cfg = tiny(method="combined", expand_at=[1])
    res = run(cfg, runs_dir)
    assert res.matrix.shape == (3, 3) and not np.isnan(res.matrix).any()
    assert ((0 <= res.matrix) & (res.matrix <= 1)).all()
    body = json.loads((runs_dir / cfg.key() / "result.json").read_text())
    for key in ("status", "config", "matrix", "task_names", "logs", "timings", "seed", "versions", "checksum", "schema"):
        assert key in body
    assert body["status"] == "complete" and body["seed"] == cfg.seed
    assert [l["action"] for l in body["logs"]] == ["full", "expand", "kd"]
    assert not (runs_dir / cfg.key() / "checkpoint.pt").exists()
    assert (runs_dir / cfg.key() / "model.pt").exists()


def test_identical_config_is_a_cache_hit(runs_dir, monkeypatch):
    """A hit reads the stored result: nothing is trained, loaded or evaluated (checked by what is called, not by
    the wall time, which depends on the machine and its load)."""
    cfg = tiny()
    first = run(cfg, runs_dir)
    assert not first.cached

    def nothing(*a, **k):
        raise AssertionError("a cache hit must not build, train or evaluate anything")
    for name in ("train_task", "build_model", "load_stream", "Evaluator"):
        monkeypatch.setattr(f"dynnn_lib.engine.train.{name}", nothing)
    second = run(from_dict(cfg.to_dict()), runs_dir)
    assert second.cached
    monkeypatch.undo()
    np.testing.assert_array_equal(first.matrix, second.matrix)
    assert run(cfg.replace(seed=1), runs_dir).cached is False


def test_same_seed_same_result_different_seed_different_result(tmp_path):
    """The same seed twice: the same matrix and the same logits bit for bit; another seed: other logits (a tiny run's
    matrix can sit at chance for both seeds, so the logits, which every seed moves, are what must differ)."""
    a = run(tiny(), tmp_path / "a")
    b = run(tiny(), tmp_path / "b")
    c = run(tiny(seed=5), tmp_path / "c")
    logits = lambda d, cfg: torch.cat([torch.as_tensor(x).flatten() for x in torch.load(  # noqa: E731
        d / cfg.key() / "outputs.pt", weights_only=False)["logits"]])
    np.testing.assert_array_equal(a.matrix, b.matrix)
    la, lb, lc = (logits(tmp_path / d, tiny(seed=s)) for d, s in (("a", 0), ("b", 0), ("c", 5)))
    assert torch.equal(la, lb) and la.shape == lc.shape and not torch.equal(la, lc)


def test_resume_after_interruption_is_bit_identical(tmp_path):
    cfg = tiny(method="combined", expand_at=[2], data={"n_tasks": 4})
    full = run(cfg, tmp_path / "full")
    part = run(cfg, tmp_path / "part", stop_after_task=1)
    assert part.status == "interrupted"
    assert (tmp_path / "part" / cfg.key() / "checkpoint.pt").exists()
    resumed = run(cfg, tmp_path / "part")
    np.testing.assert_array_equal(full.matrix, resumed.matrix)
    assert resumed.logs[0]["task"] == 0 and len(resumed.logs) == 4


_KILL_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from dynnn_lib import from_dict, run
import dynnn_lib.methods as m
cfg = from_dict({cfg!r})
orig = m.train_task
def slow(model, task, *a, **k):
    if task.index == 2:
        print("IN-TASK-2", flush=True)
        import time; time.sleep(60)
    return orig(model, task, *a, **k)
import dynnn_lib.engine.train as r
r.train_task = slow
run(cfg, {runs!r})
"""


def test_sigkill_in_the_middle_of_a_task_then_resume(tmp_path):
    cfg = tiny(method="kd", data={"n_tasks": 4})
    reference = run(cfg, tmp_path / "ref")
    runs = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT.format(cfg=cfg.to_dict(), runs=str(runs))],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "IN-TASK-2"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (runs / cfg.key() / "result.json").exists()
    resumed = run(cfg, runs)  # continues from task 2
    np.testing.assert_array_equal(reference.matrix, resumed.matrix)


def _concurrent(args):
    cfg_dict, runs = args
    import torch
    torch.set_num_threads(1)
    return run(from_dict(cfg_dict), runs).matrix.tolist()


def test_two_processes_on_the_same_config_do_not_corrupt_the_cache(tmp_path):
    cfg = tiny()
    with mp.get_context("spawn").Pool(2) as pool:
        a, b = pool.map(_concurrent, [(cfg.to_dict(), str(tmp_path))] * 2)
    assert a == b
    assert load_result(tmp_path / cfg.key() / "result.json").status == "complete"
    assert not list((tmp_path / cfg.key()).glob("*.tmp"))


@pytest.mark.parametrize("damage", ["truncate", "edit", "garbage", "schema"])
def test_damaged_result_is_detected_not_used(runs_dir, damage):
    cfg = tiny()
    run(cfg, runs_dir)
    path = runs_dir / cfg.key() / "result.json"
    text = path.read_text()
    if damage == "truncate":
        path.write_text(text[: len(text) // 2])
    elif damage == "edit":
        body = json.loads(text)
        body["matrix"][0][0] = 0.999
        path.write_text(json.dumps(body))
    elif damage == "garbage":
        path.write_bytes(b"\x00\xff")
    else:
        body = json.loads(text)
        body["schema"] = "other/9"
        path.write_text(json.dumps(body))
    with pytest.raises(ResultCorrupt, match="delete it to recompute"):
        run(cfg, runs_dir)


def test_nan_loss_stops_with_a_clear_message_and_keeps_a_failed_result(runs_dir):
    cfg = tiny(method="kd", kd_weight=1e300, data={"n_tasks": 3})  # the KD term overflows float32
    with pytest.raises(TrainingDiverged, match=r"task \d+, epoch \d+: the loss became (nan|inf)"):
        run(cfg, runs_dir)
    body = json.loads((runs_dir / cfg.key() / "result.json").read_text())
    assert body["status"] == "failed" and "lower the learning rate" in body["error"]
    assert body["matrix"][0][0] is not None          # task 0 finished and is kept
    assert body["matrix"][-1][0] is None               # the failed task's row is marked missing
    assert load_result(runs_dir / cfg.key() / "result.json").status == "failed"


def test_run_seeds_in_parallel_processes_match_sequential(tmp_path):
    cfg = tiny()
    par = run_seeds(cfg, [0, 1], tmp_path / "par", jobs=2, progress=False)
    seq = run_seeds(cfg, [0, 1], tmp_path / "seq", jobs=1, progress=False)
    assert [r.config.seed for r in par] == [0, 1]
    for p, s in zip(par, seq):
        np.testing.assert_array_equal(p.matrix, s.matrix)


def test_results_and_reports_get_normal_file_permissions(tmp_path):
    """Atomic writes go through mkstemp (mode 0600); the final files must be readable like any other file."""
    import os
    import stat

    from dynnn_lib.core.store import atomic_text

    old = os.umask(0o022)
    try:
        atomic_text(tmp_path / "report.md", "hello")
        res = run(tiny(), tmp_path / "runs")
    finally:
        os.umask(old)
    for path in (tmp_path / "report.md", res.path, res.path.parent / "model.pt"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


# ------------------------------------------------------------------ Adam's state across tasks
def test_optimizer_state_keep_carries_adams_moments_across_tasks_and_reset_does_not(tmp_path, monkeypatch):
    """reset (the default): each task starts Adam at step 0; keep: the step count and moments go on from the
    previous task, by parameter name (a new head starts fresh, the trunk goes on)."""
    import torch

    from dynnn_lib.methods import training

    starts: list[tuple[str, int]] = []
    real_adam = torch.optim.Adam

    class Spy(real_adam):
        def step(self, closure=None):
            if not getattr(self, "_seen", False):
                self._seen = True
                p = self.param_groups[0]["params"][0]
                st = self.state.get(p, {})
                starts.append((cfg_state, int(st["step"]) if "step" in st else 0))
            return super().step(closure)

    monkeypatch.setattr(training.torch.optim, "Adam", Spy)
    results = {}
    for cfg_state in ("reset", "keep"):
        results[cfg_state] = run(tiny(method="finetune", optimizer_state=cfg_state), tmp_path / cfg_state)
    steps_per_task = 1 * 32 // 32  # tiny: 1 epoch of 4 classes x 8 images in batches of 32
    assert [n for s, n in starts if s == "reset"] == [0, 0, 0]
    assert [n for s, n in starts if s == "keep"] == [0, steps_per_task, 2 * steps_per_task]
    assert results["reset"].config.key() != results["keep"].config.key()
    reset, keep = ([l["final_loss"] for l in results[k].logs] for k in ("reset", "keep"))
    # the same task 0; task 1 (one step: its logged loss comes before the step) trains differently, so task 2 differs
    assert reset[:2] == keep[:2] and reset[2] != keep[2]


def test_optimizer_state_keep_resumes_bit_identically(tmp_path):
    """The kept Adam state is part of the checkpoint: a run stopped after task 1 and resumed ends as one that ran
    through (same machine)."""
    cfg = tiny(method="combined", expand_at=[2], optimizer_state="keep", data={"n_tasks": 4})
    whole = run(cfg, tmp_path / "whole")
    assert run(cfg, tmp_path / "part", stop_after_task=1).status == "interrupted"
    resumed = run(cfg, tmp_path / "part")
    np.testing.assert_array_equal(whole.matrix, resumed.matrix)
    assert [l["final_loss"] for l in whole.logs] == [l["final_loss"] for l in resumed.logs]


def test_optimizer_state_is_validated_in_one_line():
    from dynnn_lib import ConfigError

    with pytest.raises(ConfigError, match="optimizer_state='carry' is not valid; choose one of: reset, keep"):
        tiny(optimizer_state="carry")


def test_failed_runs_say_each_distinct_error_once():
    """Several runs that fail alike raise the run's own error (its type kept); runs that fail differently raise
    one line naming each distinct error once, with the method, seed and key of the first run that hit it."""
    from dynnn_lib import DataError
    from dynnn_lib.engine.executors import Outcome, _raise_failures

    cfgs = {f"k{s}": tiny(method="finetune", seed=s) for s in range(3)}
    same = DataError("class 'mug' is missing")
    with pytest.raises(DataError, match="^class 'mug' is missing$"):
        _raise_failures([Outcome(k, "failed", error="DataError: class 'mug' is missing", exception=same)
                         for k in cfgs], cfgs)
    mixed = [Outcome("k0", "failed", error="DataError: a", exception=DataError("a")),
             Outcome("k1", "failed", error="DataError: a", exception=DataError("a")),
             Outcome("k2", "failed", error="TrainingDiverged: b", exception=TrainingDiverged("b"))]
    with pytest.raises(Exception, match=r"^3 runs failed: finetune seed 0 \(key k0\): DataError: a; "
                                        r"finetune seed 2 \(key k2\): TrainingDiverged: b$") as e:
        _raise_failures(mixed, cfgs)
    assert "\n" not in str(e.value)
    _raise_failures([], cfgs)  # nothing failed: nothing raised
