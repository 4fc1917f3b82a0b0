"""Where the time goes, side by side in one run: ours vs a bare PyTorch loop vs Avalanche Naive, per-run time of
each method, and `make all` broken into phases.

    make speed                     # installs the [bench] extra (Avalanche), then runs this; writes reports/speed.md
    python benchmarks/speed.py --tiny --no-avalanche      # seconds; what the test suite runs

1. The machine's limit: torch.matmul GFLOP/s on the threads a run uses (and on every core).
2. Training throughput (images/s) on the same job - task 0's images through our trunk + one head, same batch size
   and optimiser - for our loop (dynnn_lib.methods.fit), a bare loop on the same channels_last model, the bare loop
   on the model in PyTorch's default NCHW layout (what runs used before), and Avalanche's Naive; rounds rotate the
   order and the medians are compared. The same for a head alone on frozen-trunk features (the incremental tasks).
   Achieved GFLOP/s = images/s x 3 x forward FLOPs (forward + backward).
3. Where one epoch's time goes (torch.profiler, top operators).
4. Per-run time of each method, from the runs in the run cache (training + evaluation; task 0 shared or not).
5. `make all` by phase, from reports/phases.json (written by `make all`).
All timings run with the thread count runs are pinned to (DYNNN_THREADS, default 1). Ratios are the numbers to
compare across machines; other machines here can be 2-3x slower.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dynnn_lib import DynnnError, from_dict  # noqa: E402
from dynnn_lib.data import load_stream  # noqa: E402
from dynnn_lib.core.fingerprint import threads  # noqa: E402
from dynnn_lib.evaluation.outputs import to_float  # noqa: E402
from dynnn_lib.methods import fit  # noqa: E402
from dynnn_lib.model.build import build_model  # noqa: E402

TINY = {"base_epochs": 1, "inc_epochs": 1, "base_milestones": [1], "inc_milestones": [1], "pretrained": False,
        "data": {"n_tasks": 3, "n_classes": 4, "train_per_class": 8, "test_per_class": 4}}


def machine() -> str:
    from dynnn_lib.core.fingerprint import machine_line

    return f"{machine_line()}, torch {torch.__version__}"


def matmul_gflops(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def forward_flops(net: nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds x 2 of the convolutions and linear layers for one input (hooks count them)."""
    total = [0.0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            total[0] += 2 * out.numel() / out.shape[0] * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total[0] += 2 * m.in_features * m.out_features
    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net.eval()(x[:1])
    for h in hs:
        h.remove()
    return total[0]


def bare_loop(net: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch: int, lr: float,
              channels_last: bool) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            xb = to_float(x[idx])
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(net(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def rotate(jobs: dict, images: int, rounds: int) -> dict[str, float]:
    names = list(jobs)
    for fn in jobs.values():  # warm-up
        fn()
    speeds: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            jobs[n]()
            speeds[n].append(images / (time.perf_counter() - t))
    return {n: statistics.median(v) for n, v in speeds.items()}


def throughput(cfg, epochs: int, rounds: int, with_avalanche: bool) -> tuple[dict, dict, float, float]:
    stream = load_stream(cfg.data)
    x, y = stream.tasks[0].train_x, stream.tasks[0].train_y
    model = build_model(cfg, stream.n_classes)
    full = nn.Sequential(model.trunk, model.heads[0])
    nchw = copy.deepcopy(full).to(memory_format=torch.contiguous_format)
    lr, batch = cfg.base_lr, cfg.batch_size

    def ours(net, inputs):
        def go():
            fit(copy.deepcopy(net), lambda out, idx: F.cross_entropy(out, y[idx]), inputs, epochs=epochs, lr=lr,
                milestones=(), gamma=cfg.lr_gamma, batch_size=cfg.batch_size, augment=False,
                gen=torch.Generator().manual_seed(0), device=torch.device("cpu"))
        return go

    jobs = {"ours (methods.fit)": ours(full, x),
            "bare loop, channels_last": lambda: bare_loop(copy.deepcopy(full), x, y, epochs, batch, lr, True),
            "bare loop, NCHW (before)": lambda: bare_loop(copy.deepcopy(nchw), x, y, epochs, batch, lr, False)}
    if with_avalanche:
        from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
        from avalanche.training import Naive
        from avalanche.training.plugins import EvaluationPlugin
        from compare import avalanche_dataset

        ds = avalanche_dataset(x, y)
        bm = benchmark_from_datasets(train=[ds], test=[ds])

        def avalanche():
            net = copy.deepcopy(full)
            Naive(model=net, optimizer=torch.optim.Adam(net.parameters(), lr=lr), criterion=nn.CrossEntropyLoss(),
                  train_mb_size=batch, train_epochs=epochs, device="cpu",
                  evaluator=EvaluationPlugin(loggers=[])).train(bm.train_stream[0])
        jobs["Avalanche Naive"] = avalanche
    full_speed = rotate(jobs, len(x) * epochs, rounds)
    with torch.no_grad():
        feats = model.trunk(to_float(x).contiguous(memory_format=torch.channels_last))
    head = model.heads[0]
    head_jobs = {"ours (methods.fit), head on features": ours(head, feats),
                 "bare loop, head on features": lambda: bare_loop(copy.deepcopy(head), feats, y, epochs, batch, lr, True)}
    head_speed = rotate(head_jobs, len(x) * epochs, rounds)
    return full_speed, head_speed, forward_flops(full, to_float(x[:1])), forward_flops(head, feats[:1])


def profile_epoch(cfg) -> str:
    from torch.profiler import profile

    stream = load_stream(cfg.data)
    x, y = stream.tasks[0].train_x, stream.tasks[0].train_y
    model = build_model(cfg, stream.n_classes)
    net = nn.Sequential(model.trunk, model.heads[0])
    with profile() as p:
        fit(net, lambda out, idx: F.cross_entropy(out, y[idx]), x, epochs=1, lr=cfg.base_lr, milestones=(),
            gamma=cfg.lr_gamma, batch_size=cfg.batch_size, augment=True, gen=torch.Generator().manual_seed(0),
            device=torch.device("cpu"))
    rows = sorted(p.key_averages(), key=lambda e: -e.self_cpu_time_total)[:8]
    total = sum(e.self_cpu_time_total for e in p.key_averages())
    return fmt(["operator (one full-network epoch)", "self CPU ms", "share"],
               [[e.key, f"{e.self_cpu_time_total / 1e3:.0f}", f"{e.self_cpu_time_total / total:.0%}"] for e in rows])


def per_run_times(runs_dir: Path) -> str:
    """Median training + evaluation seconds per run, by method family, from the run cache."""
    by: dict[str, list[float]] = {}
    for res in runs_dir.glob("*/result.json"):
        body = json.loads(res.read_text())
        if body.get("status") != "complete":
            continue
        cfg = body["config"]
        p = {**cfg, **(cfg.get("method_params") or {})}  # DynamicNN's parameters (top-level before issue 19)
        name = cfg["method"] + (f" expand@{p['expand_at']}" if p.get("expand_at") else "") + \
            (f" auto<{p['expand_threshold']}" if p.get("expand_threshold") else "")
        t = body["timings"]
        task0 = t["train_s"][0] + t["eval_s"][0]
        own = t["total_s"] - (task0 if t.get("task0_shared") else 0.0)
        by.setdefault(name, []).append(own)
    if not by:
        return "(no finished runs in the run cache yet: run `make all` first)"
    return fmt(["method", "runs", "median s/run (work done in this run)", "min", "max"],
               [[n, str(len(v)), f"{statistics.median(v):.1f}", f"{min(v):.1f}", f"{max(v):.1f}"]
                for n, v in sorted(by.items())])


def phases(path: Path) -> str:
    if not path.exists():
        return "(no reports/phases.json yet: `make all` writes it)"
    ph = json.loads(path.read_text())
    total = sum(p["seconds"] for p in ph.values())
    rows = [[n, f"{p['seconds']:.0f}", f"{p['seconds'] / 60:.1f}", f"{p['seconds'] / total:.0%}"] for n, p in ph.items()]
    rows.append(["total", f"{total:.0f}", f"{total / 60:.1f}", "100%"])
    return fmt(["phase of make all", "s", "min", "share"], rows)


def fmt(header: list[str], rows: list[list[str]]) -> str:
    from dynnn_lib.reports.tables import markdown_table

    return markdown_table([header, *rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2, help="epochs per throughput job")
    ap.add_argument("--rounds", type=int, default=3, help="rotated rounds (median reported)")
    ap.add_argument("--tiny", action="store_true", help="tiny stream: checks the script in seconds")
    ap.add_argument("--no-avalanche", action="store_true")
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"))
    ap.add_argument("--out", default=str(ROOT / "reports" / "speed.md"))
    args = ap.parse_args(argv)
    try:
        torch.set_num_threads(threads())
        cfg = from_dict({**TINY, "pretrained": False} if args.tiny else {"pretrained": False})
        epochs, rounds = (1, 1) if args.tiny else (args.epochs, args.rounds)
        peak1 = matmul_gflops(256 if args.tiny else 1024)
        torch.set_num_threads(os.cpu_count() or 1)
        peak_all = matmul_gflops(256 if args.tiny else 1024)
        torch.set_num_threads(threads())
        full, head, f_full, f_head = throughput(cfg, epochs, rounds, not args.no_avalanche)
        ours_full, ours_head = full["ours (methods.fit)"], head["ours (methods.fit), head on features"]
        rows = [[n, f"{v:.0f}", f"{v * 3 * f_full / 1e9:.1f}", f"{v / ours_full:.2f}"] for n, v in full.items()]
        rows += [[n, f"{v:.0f}", f"{v * 3 * f_head / 1e9:.1f}", f"{v / ours_head:.2f}"] for n, v in head.items()]
        md = [f"# Speed: where the time goes ({time.strftime('%Y-%m-%d')})", "", f"Machine: {machine()}.", "",
              f"torch.matmul (1024²): {peak1:.0f} GFLOP/s on {threads()} thread(s), {peak_all:.0f} GFLOP/s on "
              f"{os.cpu_count()} cores. Forward FLOPs per 32×32 image: {f_full / 1e6:.1f} M (full network), "
              f"{f_head / 1e6:.1f} M (head).", "",
              fmt(["training job (same images, epochs, batch)", "images/s", "GFLOP/s achieved", "vs ours"], rows), "",
              f"Ours reaches {ours_full * 3 * f_full / 1e9 / peak1:.0%} (full network) and "
              f"{ours_head * 3 * f_head / 1e9 / peak1:.0%} (head) of the matmul rate on the same thread(s).", "",
              profile_epoch(cfg), "", "## Per-run time of each method (from the run cache)", "",
              per_run_times(Path(args.runs_dir)), "", "## make all, by phase", "", phases(ROOT / "reports" / "phases.json")]
        text = "\n".join(md) + "\n"
        print(text)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    except DynnnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
