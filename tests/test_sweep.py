"""Sweeps: spec validation, dry-run counts, a local sweep with a failing point, and a real Ray cluster
(``ray start --head``, 2 CPUs) with a worker killed mid-run and a driver killed mid-sweep."""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from dynnn_lib.cli import main
from dynnn_lib.experiments.sweep import load_spec, load_sweep, make_plan

ROOT = Path(__file__).resolve().parents[1]
TINY = {"preset": "tiny", "base": {"method": "combined"}}


def write_spec(tmp_path, fname="s", **body):
    path = tmp_path / f"{fname}.yaml"
    path.write_text(yaml.safe_dump(body))
    return str(path)


def one_line_error(capsys, argv, message):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("dynnn: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("body, message", [
    ({**TINY, "grid": {"expand_at": [[1]]}, "grdi": {}}, "unknown sweep field 'grdi'"),
    ({**TINY, "grid": {"kd_hed": ["best"]}}, "unknown field 'kd_hed'"),
    ({**TINY, "grid": {"data.ntasks": [3]}}, "unknown field 'data.ntasks'"),
    ({**TINY, "grid": {"seed.x": [3]}}, "unknown field 'seed.x'"),
    ({**TINY, "grid": {}}, "the sweep is empty"),
    ({**TINY, "grid": {"expand_at": []}}, "grid field 'expand_at' has no values"),
    ({**TINY, "grid": {"expand_at": [[1]], "base_epochs": [1, 0]}}, "field 'base_epochs' value 0"),
    ({**TINY, "grid": {"expand_at": [[1], [7]]}}, "field 'expand_at' value [7]"),
    ({**TINY, "grid": {"expand_at": [[1]], "data.n_tasks": [3, 1]}}, "field 'data.n_tasks' value 1"),
    ({**TINY, "grid": {"expand_at": [[1]], "seed": {"range": "x"}}}, "grid field 'seed': range must be"),
    ({**TINY, "grid": {"expand_at": [[1]]}, "metric": "accuracy"}, "metric='accuracy' is not valid"),
    ({**TINY, "grid": {"expand_at": [[1]]}, "name": "a/b"}, "name='a/b' must be"),
])
def test_spec_errors_are_one_line_naming_the_field(tmp_path, capsys, body, message):
    one_line_error(capsys, ["sweep", write_spec(tmp_path, **body), "--dry-run", "--runs-dir", str(tmp_path)], message)


def test_cli_errors(tmp_path, capsys):
    spec = write_spec(tmp_path, **TINY, grid={"expand_at": [[1]]})
    one_line_error(capsys, ["sweep", str(tmp_path / "missing.yaml")], "does not exist")
    one_line_error(capsys, ["sweep", spec, "--address", "auto"], "--address needs --executor ray")
    one_line_error(capsys, ["sweep", spec, "--threads", "0", "--dry-run"], "--threads 0")


def test_spec_expansion_ranges_lists_and_nested_fields(tmp_path):
    spec = load_spec(write_spec(tmp_path, name="x", preset="tiny", base={"data": {"n_tasks": 4}},
                                list=[{"method": "kd"}, {"method": "combined", "expand_at": [1]}],
                                grid={"data": {"data_seed": [0, 1]}, "seed": {"range": [2, 5]}}))
    assert spec.name == "x" and spec.grid == {"data.data_seed": [0, 1], "seed": [2, 3, 4]}
    plan = make_plan(spec, tmp_path / "runs")
    assert len(plan.points) == 2 * 2 * 3 and plan.todo == 12
    assert {p.config.data.n_tasks for p in plan.points} == {4}
    assert [p.config.seed for p in plan.points[:3]] == [2, 3, 4]


def test_local_sweep_dry_run_cache_and_report(tmp_path, capsys):
    runs, out = str(tmp_path / "runs"), str(tmp_path / "reports")
    common = ["--runs-dir", runs, "--out", out, "--no-progress", "--jobs", "1"]
    small = write_spec(tmp_path, "small", name="demo", **TINY, grid={"expand_at": [[1], [2]], "seed": [0]})
    assert main(["sweep", small, *common]) == 0
    text = capsys.readouterr().out
    assert "2 runs: 2 trained, 0 cached, 0 failed" in text and "| [1] | 1 | 0 |" in text
    # a larger sweep over the same runs: the two finished runs are cached; a head rule is a re-score, not a run
    big = write_spec(tmp_path, "big", name="demo", **TINY, grid={"expand_at": [[1], [2]], "seed": {"range": 2},
                                                                   "head_rule": ["router", "oracle"]})
    assert main(["sweep", big, "--dry-run", *common]) == 0
    dry = capsys.readouterr().out
    assert "8 runs (4 distinct trainings), 2 cached, 2 to run; estimate ~" in dry
    before = {p: p.stat().st_mtime_ns for p in Path(runs).glob("*/result.json")}
    assert main(["sweep", big, *common]) == 0
    assert "8 runs: 2 trained, 2 cached, 0 failed" in capsys.readouterr().out
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())   # cached runs are not recomputed
    rep = load_sweep("demo", out)
    assert rep.fields == ["expand_at", "head_rule"] and len(rep.rows) == 4 and len(rep.runs) == 8
    assert all(r["n"] == 2 and r["ci95"] is not None for r in rep.rows)
    folder = Path(out) / "demo"
    assert {"table.md", "runs.csv", "sweep.json", "figure.html"} <= {p.name for p in folder.iterdir()}
    assert len((folder / "runs.csv").read_text().splitlines()) == 9
    res = rep.results()
    assert all(r is not None for r in res)
    np.testing.assert_array_equal(res[0].matrix, np.array(rep.runs[0]["matrix"], dtype=float))


PLUGIN = '''
import torch.nn.functional as F
from dynnn_lib.methods import Method, register


@register
class SweepMine(Method):
    """Finetune under a name of its own (a plugin the sweep's workers must import)."""

    name = "sweep_mine_test"

    def train_task(self, ctx):
        y = ctx.y
        return ctx.log("mine", ctx.fit(ctx.network(), lambda out, idx: F.cross_entropy(out, y[idx]), ctx.task.train_x))
'''


def test_a_failed_run_is_reported_and_the_others_finish(tmp_path, capsys):
    """Two worker processes (they import the plugin method too); one point points at a dataset that is not there."""
    plugin = tmp_path / "sweep_plugin_test.py"
    plugin.write_text(PLUGIN)
    spec = write_spec(tmp_path, name="fails", preset="tiny", base={"method": "kd"}, grid={"seed": [0, 1]},
                      list=[{}, {"method": "sweep_mine_test"},
                            {"data": {"source": "openloris-folders", "root": str(tmp_path / "nowhere")}}])
    rc = main(["sweep", spec, "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), "--jobs", "2",
               "--no-progress", "--import", str(plugin)])
    cap = capsys.readouterr()
    assert rc == 1
    assert "6 runs: 4 trained, 0 cached, 2 failed" in cap.out
    assert cap.err.count("failed: data.root=") == 2 and 'data.source="openloris-folders"' in cap.err
    assert "nowhere does not exist" in cap.err
    rep = load_sweep("fails", tmp_path / "rep")
    assert [r["status"] for r in rep.runs] == ["done"] * 4 + ["failed"] * 2
    assert rep.runs[2]["config"]["method"] == "sweep_mine_test"
    assert rep.runs[4]["error"].startswith("DataError")
    assert rep.rows[2]["n"] == 0 and rep.rows[2]["failed"] == 2 and rep.rows[2]["mean"] is None


def test_ray_missing_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    spec = write_spec(tmp_path, **TINY, grid={"expand_at": [[1]]})
    one_line_error(capsys, ["sweep", spec, "--executor", "ray", "--runs-dir", str(tmp_path), "--no-progress",
                            "--out", str(tmp_path / "rep")], "needs Ray: pip install 'dynnn[ray]'")


# ------------------------------------------------------------------ a real Ray cluster
def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # on a loaded 2-core machine the agents and workers start slowly: wait longer than Ray's defaults
    env.setdefault("RAY_raylet_start_wait_time_s", "120")
    env.setdefault("RAY_worker_register_timeout_seconds", "120")
    return env


@pytest.fixture(scope="module")
def cluster():
    """A head node of our own (2 CPUs, free ports, its own short temp dir), torn down by its process group:
    never `ray stop`, which stops every Ray cluster of the user on the machine."""
    # token authentication with a token of our own, for the head and every driver (never ~/.ray/auth_token)
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    try:
        yield from _head()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _head():
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'dynnn[ray]'); the cluster tests need it")
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        ray_bin = shutil.which("ray")
    if not ray_bin:
        pytest.skip("Ray is importable but its `ray` command is not on PATH")
    for attempt in range(3):  # on a loaded machine the raylet can miss Ray's fixed 30 s registration window
        tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # unix socket paths must stay short
        p = _free_ports(10)
        cmd = [str(ray_bin), "start", "--head", "--block", "--num-cpus", "2", "--port", str(p[0]),
               "--temp-dir", tmp, "--include-dashboard", "false", "--include-log-monitor", "false", "--disable-usage-stats",
               "--node-manager-port", str(p[1]), "--object-manager-port", str(p[2]),
               "--ray-client-server-port", str(p[3]), "--dashboard-agent-listen-port", str(p[4]),
               "--dashboard-agent-grpc-port", str(p[5]), "--metrics-export-port", str(p[6]),
               "--runtime-env-agent-port", str(p[7]), "--dashboard-port", str(p[8]),
               "--object-store-memory", str(100 * 1024 ** 2)]
        log = open(os.path.join(tmp, "head.log"), "w")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_env())
        deadline = time.time() + 120
        while "Ray runtime started" not in Path(tmp, "head.log").read_text():
            if proc.poll() is not None or time.time() > deadline:
                break
            time.sleep(0.3)
        else:
            break
        text = Path(tmp, "head.log").read_text()
        _stop_head(proc, log, tmp)
        if attempt == 2:
            pytest.fail(f"ray start --head did not come up in 3 tries:\n{text[-2000:]}")
    import ray

    address = f"127.0.0.1:{p[0]}"
    try:
        # one driver connection (one Ray job, whose workers are reused) for the in-process sweeps of this module:
        # the executor uses an initialised Ray as it is; each sweep still names the cluster with --address
        ray.init(address=address, log_to_driver=False, configure_logging=False)
        yield address
    finally:
        ray.shutdown()
        _stop_head(proc, log, tmp)


def _stop_head(proc, log, tmp):
    """SIGKILL our head's process group (ray start and the GCS, raylet, agents it started; the workers die with
    their raylet): a graceful stop takes 15 s here and a test cluster has nothing to save."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    log.close()
    shutil.rmtree(tmp, ignore_errors=True)


# runs long enough (several tasks) to be killed in the middle
SLOW = {"preset": "tiny", "base": {"method": "kd", "inc_epochs": 3,
                                   "data": {"n_tasks": 5, "train_per_class": 24}}}


def _lock_holder(run_dir: Path) -> int | None:
    """The process that has the run folder's lock file open (the worker training it)."""
    target = str(run_dir / ".lock")
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return int(pid)
        except OSError:
            continue
    return None


def _kill_a_worker_mid_run(runs: Path, killed: dict, seconds: float) -> None:
    """SIGKILL the worker process of the first run in `runs` that has checkpointed at least one task and not all 5
    (the process holding its run folder's lock); what was killed goes into `killed`."""
    import torch

    deadline = time.time() + seconds
    while time.time() < deadline and not killed:
        for ck in runs.glob("*/checkpoint.pt"):
            try:
                state = torch.load(ck, weights_only=False)
            except Exception:
                continue
            pid = _lock_holder(ck.parent)
            if pid and pid != os.getpid() and state["completed"] < 5:
                os.kill(pid, signal.SIGKILL)
                killed.update(pid=pid, key=ck.parent.name, completed=state["completed"],
                              train_s=list(state["timings"]["train_s"]))
                return
        time.sleep(0.02)


@pytest.mark.ray
def test_ray_cluster_matches_local_and_retries_a_killed_worker(cluster, tmp_path, capsys):
    spec = write_spec(tmp_path, name="cmp", **SLOW, grid={"seed": {"range": 2}})
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main(["sweep", spec, "--jobs", "1", "--runs-dir", str(local), "--out", str(local / "rep"),
                 "--no-progress"]) == 0

    killed: dict = {}
    t = threading.Thread(target=_kill_a_worker_mid_run, args=(remote, killed, 120), daemon=True)
    t.start()
    rc = main(["sweep", spec, "--executor", "ray", "--address", cluster, "--runs-dir", str(remote),
               "--out", str(remote / "rep"), "--no-progress"])
    t.join(5)
    assert rc == 0, capsys.readouterr().err
    assert "2 runs: 2 trained, 0 cached, 0 failed" in capsys.readouterr().out
    assert killed, "no worker was caught mid-run"
    assert killed["pid"] != os.getpid()
    a, b = load_sweep("cmp", local / "rep"), load_sweep("cmp", remote / "rep")
    assert [r["key"] for r in a.runs] == [r["key"] for r in b.runs]   # same thread count: same keys
    for ra, rb in zip(a.runs, b.runs):                                  # identical matrices per configuration
        np.testing.assert_array_equal(np.array(ra["matrix"], float), np.array(rb["matrix"], float))
    # the retried task resumed from the checkpoint: the killed attempt's task timings are carried over verbatim
    body = json.loads((remote / killed["key"] / "result.json").read_text())
    assert body["timings"]["train_s"][:killed["completed"]] == killed["train_s"]


@pytest.mark.ray
def test_ray_driver_killed_then_rerun_redoes_no_finished_run(cluster, tmp_path, capsys):
    spec = write_spec(tmp_path, name="resume", **SLOW, grid={"seed": {"range": [10, 13]}})
    runs = tmp_path / "runs"
    args = [spec, "--executor", "ray", "--address", cluster, "--runs-dir", str(runs), "--out", str(tmp_path / "rep"),
            "--no-progress"]
    driver = subprocess.Popen([sys.executable, "-m", "dynnn_lib.cli", "sweep", *args], env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while not list(runs.glob("*/result.json")):
        assert driver.poll() is None and time.time() < deadline, "the driver ended before any run finished"
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(3)  # a worker of the dead driver may still be finishing its run when Ray ends the job
    finished = {p: p.stat().st_mtime_ns for p in runs.glob("*/result.json")}
    assert 1 <= len(finished) < 3
    assert main(["sweep", spec, "--dry-run", "--runs-dir", str(runs)]) == 0
    assert f"3 runs, {len(finished)} cached, {3 - len(finished)} to run" in capsys.readouterr().out
    assert main(["sweep", *args]) == 0
    assert f"3 runs: {3 - len(finished)} trained, {len(finished)} cached, 0 failed" in capsys.readouterr().out
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())   # no finished run was redone
    assert len(list(runs.glob("*/result.json"))) == 3


def test_local_pool_retries_a_killed_worker_and_the_run_resumes_from_its_checkpoint(tmp_path, capsys):
    """The local executor (2 worker processes): one worker is SIGKILLed after its run checkpointed a task. The
    pool is rebuilt, the runs are resubmitted and resume from their checkpoints (the killed attempt's per-task
    timings are carried over verbatim), and the matrices equal those of the same sweep run in-process."""
    spec = write_spec(tmp_path, name="kill", **SLOW, grid={"seed": {"range": 2}})
    inproc, pooled = tmp_path / "inproc", tmp_path / "pooled"
    assert main(["sweep", spec, "--jobs", "1", "--runs-dir", str(inproc), "--out", str(inproc / "rep"),
                 "--no-progress"]) == 0
    capsys.readouterr()
    killed: dict = {}
    t = threading.Thread(target=_kill_a_worker_mid_run, args=(pooled, killed, 300), daemon=True)
    t.start()
    rc = main(["sweep", spec, "--executor", "local", "--jobs", "2", "--runs-dir", str(pooled),
               "--out", str(pooled / "rep"), "--no-progress"])
    t.join(5)
    assert rc == 0, capsys.readouterr().err
    assert "2 runs: 2 trained, 0 cached, 0 failed" in capsys.readouterr().out
    assert killed, "no worker was caught mid-run"
    body = json.loads((pooled / killed["key"] / "result.json").read_text())
    assert body["timings"]["train_s"][:killed["completed"]] == killed["train_s"]
    a, b = load_sweep("kill", inproc / "rep"), load_sweep("kill", pooled / "rep")
    assert [r["key"] for r in a.runs] == [r["key"] for r in b.runs]
    for ra, rb in zip(a.runs, b.runs):
        np.testing.assert_array_equal(np.array(ra["matrix"], float), np.array(rb["matrix"], float))
