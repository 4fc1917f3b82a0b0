"""The benchmark script runs end to end (tiny, without Avalanche) and reports what it promises."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("bench_compare", ROOT / "benchmarks" / "compare.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_script_tiny_without_avalanche(tmp_path, capsys):
    bench = _load()
    out = tmp_path / "bench.md"
    assert bench.main(["--tiny", "--no-avalanche", "--no-isolate", "--seeds", "1", "--rounds", "2", "--out", str(out)]) == 0
    text = out.read_text()
    for method in ("ours: finetune", "ours: KD (DynamicNN, no expand)", "ours: combined (expand@1)"):
        assert f"| {method} |" in text
    assert "| ours: combined (expand@1) | 2 |" in text  # two heads after expanding at task 1
    assert "Our loop's overhead vs the bare loop:" in text and "| bare PyTorch loop |" in text
    assert "Avalanche" not in text.split("## Training throughput")[1]


def test_bare_loop_and_ours_train_the_same_network_the_same_way():
    """Same seed, same data, same Adam: our loop and the bare loop end with the same weights (so the timing
    comparison compares equal work)."""
    import copy

    import torch
    import torch.nn.functional as F

    from dynnn_lib import from_dict
    from dynnn_lib.data import load_stream
    from dynnn_lib.methods import fit

    bench = _load()
    cfg = from_dict(bench.TINY)
    stream = load_stream(cfg.data)
    x, y = stream.tasks[0].train_x, stream.tasks[0].train_y
    net = bench.plain_net(cfg, stream.n_classes)
    a, b = copy.deepcopy(net), copy.deepcopy(net)
    fit(a, lambda out, idx: F.cross_entropy(out, y[idx]), x, epochs=2, lr=cfg.base_lr, milestones=(), gamma=cfg.lr_gamma,
        batch_size=cfg.batch_size, augment=False, gen=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    bench.bare_loop(b, x, y, cfg, 2, torch.device("cpu"), torch.Generator().manual_seed(0))
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


def test_bad_device_is_one_line(capsys):
    assert _load().main(["--tiny", "--no-avalanche", "--device", "gpu"]) == 2
    assert capsys.readouterr().err.strip() == "error: device='gpu' is not valid; choose one of: cpu, cuda, auto"


def test_speed_script_tiny_reports_throughput_profile_and_phases(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_speed", ROOT / "benchmarks" / "speed.py")
    speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(speed)
    out = tmp_path / "speed.md"
    assert speed.main(["--tiny", "--no-avalanche", "--runs-dir", str(tmp_path / "none"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "Machine:" in text and "GFLOP/s on" in text
    for job in ("| ours (methods.fit) |", "| bare loop, channels_last |", "| bare loop, NCHW (before) |",
                "| ours (methods.fit), head on features |"):
        assert job in text
    assert "| operator (one full-network epoch) |" in text and "## make all, by phase" in text


def _script(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sharing_script_tiny_counts_and_trains_both_ways(tmp_path):
    sharing = _script("sharing")
    assert sharing.main(["--tiny", "--no-latency", "--out", str(tmp_path)]) == 0
    import json

    res = json.loads((tmp_path / "sharing-tiny.json").read_text())
    full = res["counts"]["landscape, 9 tasks, 256 schedules, 3 seeds"]
    assert full["runs"] == 3 * 257 and full["tree"] == 3 * (1 + 510 + 8) and full["ratio"] > 3.5  # + the auto rule
    for name, d in res["measured"].items():
        assert d["all"]["trained_tasks"] <= d["task0"]["trained_tasks"] and d["all"]["prefix_mb"] > 0, name
    land = next(d for n, d in res["measured"].items() if n.startswith("landscape"))
    assert land["all"]["trained_tasks"] < land["task0"]["trained_tasks"]
    assert "| workload | task trainings | wall |" in (tmp_path / "sharing-tiny.md").read_text()


def test_gpu_script_says_so_without_a_gpu(capsys):
    import torch

    if torch.cuda.is_available():
        import pytest

        pytest.skip("a GPU is present: the script would measure it")
    assert _script("gpu").main([]) == 0 and "no CUDA GPU here" in capsys.readouterr().out


def test_lite0_script_tiny_times_both_backbones_and_every_kind_of_task(tmp_path):
    out = tmp_path / "lite0.md"
    assert _script("lite0").main(["--tiny", "--out", str(out)]) == 0
    text = out.read_text()
    assert "Machine:" in text and "| small @32 | 15.9 |" in text and "| efficientnet_lite0 @32 | 12.1 |" in text
    assert "| task 0 (full) | frozen-trunk task (features + head) | trunk-training task (full) |" in text
    small = [line for line in text.splitlines() if line.startswith("| small @32 |") and "(" in line]
    assert len(small) == 1 and small[0].count("(1x)") == 3  # small is the reference of every per-task column
