"""Side by side, in one run: dynnn vs Avalanche on the same stream, our training loop vs a bare PyTorch loop.

    make bench                                  # installs the [bench] extra (avalanche-lib 0.6.0), then runs this
    python benchmarks/compare.py [--seeds 3] [--threads 2] [--device cpu|cuda|auto] [--out reports/benchmarks.md]
    python benchmarks/compare.py --tiny --no-avalanche      # seconds; what the test suite runs

1. Accuracy and wall time.  The embedded stream (9 tasks), the same network (our trunk + one head, same
   pretrained convs, same seed), the same optimiser (Adam, same learning rates and step decay; Adam's state reset
   at every task on both sides, or kept on both with --optimizer-state keep: Avalanche keeps it by default, so
   its side clears it before each experience), the same epochs and batch size, the same flip augmentation on task 0, the same seeds; every
   accuracy matrix is measured by the same evaluation function.  Ours: finetune, KD (DynamicNN, no expand),
   combined (expand@1).  Avalanche 0.6: Naive, LwF (alpha = our kd_weight, T = our kd_temperature), EWC
   (lambda 100) and Replay (200 images).  Each run happens in a fresh process so its peak memory is its own;
   wall time is measured inside that process (import and process start excluded), evaluation included.
   Each pair (an in-workbench baseline beside Avalanche's) is compared seed by seed (both sides start from the
   same weights for a seed): the mean difference ours - Avalanche with its 95 % interval; an interval that
   contains 0 finds no difference.
2. Throughput (images/s) of one training job (task 0 data, same model, epochs and batch size) through our loop
   (dynnn_lib.methods.fit), a minimal hand-written PyTorch loop and Avalanche's Naive, alternated over rounds;
   ratios from the medians.
3. Model size (parameters, bytes; replay memory counted apart) and inference time per image.

Every number is printed and written as Markdown to --out.  Timings are from the machine the script ran on; the
ratios, measured side by side in one run, are the numbers to compare across machines.
"""
from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import warnings
from concurrent.futures import ProcessPoolExecutor
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", message="No loggers specified")  # we evaluate with our own function
warnings.filterwarnings("ignore", message="Call to deprecated function")  # inside Avalanche 0.6 Replay

from dynnn_lib import DynnnError, RunConfig, from_dict  # noqa: E402
from dynnn_lib.core.config import apply_assignments  # noqa: E402
from dynnn_lib.experiments.paper import VARIANTS  # noqa: E402
from dynnn_lib.data import load_stream  # noqa: E402
from dynnn_lib.core.fingerprint import machine_line  # noqa: E402
from dynnn_lib.evaluation.stats import paired  # noqa: E402
from dynnn_lib.evaluation.outputs import EVAL_BATCH, to_float  # noqa: E402
from dynnn_lib.methods import fit  # noqa: E402
from dynnn_lib.evaluation.metrics import summarize  # noqa: E402
from dynnn_lib.model.network import DynamicNet, model_size_bytes  # noqa: E402
from dynnn_lib.model.build import build_model  # noqa: E402
from dynnn_lib.reports.tables import markdown_table, pm  # noqa: E402
from dynnn_lib.engine.runner import resolve_device, run  # noqa: E402

EWC_LAMBDA = 100.0
REPLAY_MEM = 200
LWF_ALPHA, LWF_T = 1.0, 2.0
OURS = {"ours: finetune": VARIANTS["finetune"],
        "ours: LwF": {"method": "lwf", "method_params": {"alpha": LWF_ALPHA, "temperature": LWF_T}},
        "ours: EWC": {"method": "ewc", "method_params": {"ewc_lambda": EWC_LAMBDA}},
        "ours: replay (200)": {"method": "replay", "method_params": {"memory": REPLAY_MEM}},
        "ours: joint": {"method": "joint"},
        "ours: KD (DynamicNN, no expand)": VARIANTS["DynamicNN (no expand)"],
        "ours: combined (expand@1)": VARIANTS["DynamicNN (expand@1)"]}
AVALANCHE = {"Avalanche Naive": "naive", "Avalanche LwF": "lwf", "Avalanche EWC": "ewc",
             "Avalanche Replay (200, reservoir)": "replay", "Avalanche Cumulative": "cumulative"}
# each in-workbench baseline beside Avalanche's implementation of the same method
PAIRS = [("ours: finetune", "Avalanche Naive"), ("ours: LwF", "Avalanche LwF"), ("ours: EWC", "Avalanche EWC"),
         ("ours: replay (200)", "Avalanche Replay (200, reservoir)"), ("ours: joint", "Avalanche Cumulative")]
ORDER = [n for pair in PAIRS for n in pair] + ["ours: KD (DynamicNN, no expand)", "ours: combined (expand@1)"]
RATIOS = PAIRS + [("ours: combined (expand@1)", "Avalanche Naive")]
TINY = {"base_epochs": 1, "inc_epochs": 1, "base_milestones": [1], "inc_milestones": [1], "pretrained": False,
        "data": {"n_tasks": 3, "n_classes": 4, "train_per_class": 8, "test_per_class": 4}}


# ----------------------------------------------------------------------------------------------- helpers
def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@torch.no_grad()
def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    """Accuracy of any classifier returning scores (logits or probabilities) on uint8 images."""
    net.eval()
    pred = torch.cat([net(to_float(x[i:i + EVAL_BATCH].to(device))).argmax(-1).cpu() for i in range(0, len(x), EVAL_BATCH)])
    return (pred == y).float().mean().item()


def inference_us_per_image(net: nn.Module, stream, device: torch.device) -> float:
    xs = torch.cat([t.test_x for t in stream.tasks])
    ys = torch.cat([t.test_y for t in stream.tasks])
    evaluate(net, xs[:EVAL_BATCH], ys[:EVAL_BATCH], device)  # warm-up
    t0 = time.perf_counter()
    evaluate(net, xs, ys, device)
    return (time.perf_counter() - t0) / len(xs) * 1e6


def plain_net(cfg: RunConfig, n_classes: int) -> nn.Sequential:
    """Our trunk + one head as a plain network: what Avalanche and the bare loop train."""
    model = build_model(cfg, n_classes)
    return nn.Sequential(model.trunk, model.heads[0])


# ----------------------------------------------------------------------------------------------- one run
def run_ours(cfg: RunConfig, stream, device: torch.device, runs_dir: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    res = run(cfg, runs_dir)
    wall = time.perf_counter() - t0
    state = torch.load(Path(runs_dir) / cfg.key() / "model.pt", weights_only=False)
    model = DynamicNet(cfg, stream.n_classes)
    model.load_saved(state)
    model.to(device)
    memory = cfg.method_params.get("memory", 0) if cfg.method == "replay" else 0  # our memory keeps uint8 images
    return {"matrix": res.matrix.tolist(), "wall_s": wall, "model_bytes": model_size_bytes(model),
            "n_params": sum(p.numel() for p in model.parameters()),
            "extra_mb": memory * stream.tasks[0].train_x[0].numel() / 2**20,
            "infer_us": inference_us_per_image(model, stream, device), "heads": state["n_heads"]}


def avalanche_dataset(x: torch.Tensor, y: torch.Tensor):
    """uint8 images + labels as an Avalanche dataset with task label 0 (LwF needs task labels even here)."""
    from avalanche.benchmarks.utils import DataAttribute, TaskAwareClassificationDataset
    from avalanche.benchmarks.utils.data_attribute import TaskLabels

    ys = y.tolist()
    return TaskAwareClassificationDataset([torch.utils.data.TensorDataset(to_float(x), y)],
                                          data_attributes=[DataAttribute(ys, "targets"), TaskLabels([0] * len(ys))])


def run_avalanche(kind: str, cfg: RunConfig, stream, device: torch.device) -> dict[str, Any]:
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.core import SupervisedPlugin
    from avalanche.training import EWC, Cumulative, LwF, Naive
    from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
    from avalanche.training.storage_policy import ReservoirSamplingBuffer

    class SameSchedule(SupervisedPlugin):
        """Our schedule: base lr/epochs/milestones on task 0, incremental ones after; flips on task 0."""

        def __init__(self):
            super().__init__()
            self.sched = None
            self.gen = torch.Generator().manual_seed(cfg.seed)

        def before_training_exp(self, strategy, **kw):
            first = strategy.experience.current_experience == 0
            if cfg.optimizer_state == "reset":  # Avalanche keeps Adam's moments and step across experiences
                strategy.optimizer.state.clear()
            lr = cfg.base_lr if first else cfg.incremental_lr()
            for g in strategy.optimizer.param_groups:
                g["lr"] = g["initial_lr"] = lr
            self.sched = torch.optim.lr_scheduler.MultiStepLR(
                strategy.optimizer, list(cfg.base_milestones if first else cfg.inc_milestones), gamma=cfg.lr_gamma)

        def after_training_epoch(self, strategy, **kw):
            self.sched.step()

        def before_forward(self, strategy, **kw):
            if strategy.experience.current_experience == 0:
                x = strategy.mbatch[0]
                flip = (torch.rand(len(x), generator=self.gen) < 0.5).to(x.device)
                x[flip] = x[flip].flip(-1)

    torch.manual_seed(cfg.seed)
    net = plain_net(cfg, stream.n_classes).to(device)
    bm = benchmark_from_datasets(train=[avalanche_dataset(t.train_x, t.train_y) for t in stream.tasks],
                                 test=[avalanche_dataset(t.test_x[:1], t.test_y[:1]) for t in stream.tasks])
    common = dict(model=net, optimizer=torch.optim.Adam(net.parameters(), lr=cfg.base_lr),
                  criterion=nn.CrossEntropyLoss(), train_mb_size=cfg.batch_size, train_epochs=cfg.base_epochs,
                  eval_mb_size=EVAL_BATCH, device=device, plugins=[SameSchedule()],
                  evaluator=EvaluationPlugin(loggers=[]))
    t0 = time.perf_counter()
    if kind == "naive":
        strategy = Naive(**common)
    elif kind == "lwf":  # Avalanche's KL has no T^2 factor, ours (Hinton's) has: the same loss needs alpha * T^2
        strategy = LwF(alpha=LWF_ALPHA * LWF_T ** 2, temperature=LWF_T, **common)
    elif kind == "ewc":
        strategy = EWC(ewc_lambda=EWC_LAMBDA, mode="separate", **common)
    elif kind == "replay":  # a reservoir memory and one memory batch per training batch, as ours
        common["plugins"] = common["plugins"] + [ReplayPlugin(mem_size=REPLAY_MEM, batch_size_mem=cfg.batch_size,
                                                              storage_policy=ReservoirSamplingBuffer(REPLAY_MEM))]
        strategy = Naive(**common)
    elif kind == "cumulative":
        strategy = Cumulative(**common)
    else:
        raise ValueError(kind)
    n = len(stream.tasks)
    matrix = np.full((n, n), np.nan)
    for i, exp in enumerate(bm.train_stream):
        strategy.train_epochs = cfg.base_epochs if i == 0 else cfg.inc_epochs
        strategy.train(exp)
        matrix[i] = [evaluate(net, t.test_x, t.test_y, device) for t in stream.tasks]
    wall = time.perf_counter() - t0
    image_mb = stream.tasks[0].train_x[0].numel() * 4 / 2**20  # Avalanche keeps float32 images
    return {"matrix": matrix.tolist(), "wall_s": wall, "model_bytes": model_size_bytes(net),
            "n_params": sum(p.numel() for p in net.parameters()),
            "extra_mb": REPLAY_MEM * image_mb if kind == "replay" else 0.0,
            "infer_us": inference_us_per_image(net, stream, device), "heads": 1}


def one_run(name: str, cfg_dict: dict, threads: int, runs_dir: str) -> dict[str, Any]:
    """Child-process entry: everything measured here belongs to this one run."""
    torch.set_num_threads(threads)
    cfg = from_dict(cfg_dict)
    device = resolve_device(cfg.device)
    stream = load_stream(cfg.data)
    if name not in OURS:
        import avalanche.training  # noqa: F401  (its import is not the run's memory)
    # warm-up: a full batch forward/backward and an Adam step load every kernel and library (Adam's first step
    # alone maps ~150 MB here), so "RSS growth" is the run's own memory
    net = plain_net(cfg, stream.n_classes).to(device)
    xb, yb = stream.tasks[0].train_x[:cfg.batch_size], stream.tasks[0].train_y[:cfg.batch_size]
    opt = torch.optim.Adam(net.parameters())
    F.cross_entropy(net(to_float(xb.to(device))), yb.to(device)).backward()
    opt.step()
    del net, opt
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss0 = rss_mb()
    if name in OURS:
        out = run_ours(cfg, stream, device, runs_dir)
    else:
        out = run_avalanche(AVALANCHE[name], cfg, stream, device)
    out.update(rss_start_mb=rss0, rss_peak_mb=peak_rss_mb(),
               cuda_peak_mb=torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None)
    return out


# ----------------------------------------------------------------------------------------------- throughput
def bare_loop(net: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: RunConfig, epochs: int, device, gen) -> None:
    """The minimal loop: shuffle, batch, forward, cross-entropy, backward, Adam step."""
    opt = torch.optim.Adam(net.parameters(), lr=cfg.base_lr)
    net.train()
    y = y.to(device)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            loss = F.cross_entropy(net(to_float(x[idx].to(device))), y[idx.to(device)])
            opt.zero_grad()
            loss.backward()
            opt.step()


def throughput(cfg: RunConfig, epochs: int, rounds: int, with_avalanche: bool) -> dict[str, list[float]]:
    device = resolve_device(cfg.device)
    stream = load_stream(cfg.data)
    task = stream.tasks[0]
    x, y = task.train_x, task.train_y
    template = plain_net(cfg, stream.n_classes)
    images = len(x) * epochs

    def ours():
        net = copy.deepcopy(template).to(device)
        yd = y.to(device)
        fit(net, lambda out, idx: F.cross_entropy(out, yd[idx]), x, epochs=epochs, lr=cfg.base_lr, milestones=(),
            gamma=cfg.lr_gamma, batch_size=cfg.batch_size, augment=False, gen=torch.Generator().manual_seed(0),
            device=device, progress=False)

    def bare():
        bare_loop(copy.deepcopy(template).to(device), x, y, cfg, epochs, device, torch.Generator().manual_seed(0))

    jobs = {"ours (dynnn_lib.methods.fit)": ours, "bare PyTorch loop": bare}
    if with_avalanche:
        from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
        from avalanche.training import Naive
        from avalanche.training.plugins import EvaluationPlugin

        ds = avalanche_dataset(x, y)
        bm = benchmark_from_datasets(train=[ds], test=[ds])

        def avalanche():
            net = copy.deepcopy(template).to(device)
            Naive(model=net, optimizer=torch.optim.Adam(net.parameters(), lr=cfg.base_lr), criterion=nn.CrossEntropyLoss(),
                  train_mb_size=cfg.batch_size, train_epochs=epochs, device=device,
                  evaluator=EvaluationPlugin(loggers=[])).train(bm.train_stream[0])

        jobs["Avalanche Naive"] = avalanche
    names = list(jobs)
    for fn in jobs.values():  # warm-up: allocator, kernels, lazy imports
        fn()
    speeds: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:  # rotate the order every round
            t0 = time.perf_counter()
            jobs[n]()
            speeds[n].append(images / (time.perf_counter() - t0))
    return speeds


# ----------------------------------------------------------------------------------------------- report
def fmt_table(header: list[str], rows: list[list[str]]) -> str:
    return markdown_table([header, *rows])


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except DynnnError as e:  # a bad --device, a broken cache: one line, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="torch threads per run")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--rounds", type=int, default=5, help="throughput rounds (median reported)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per throughput job")
    ap.add_argument("--tiny", action="store_true", help="tiny stream and epochs: checks the script in seconds")
    ap.add_argument("--no-avalanche", action="store_true", help="only our methods and the bare loop")
    ap.add_argument("--n-tasks", type=int, help="only the first N tasks of the stream (a shorter, cheaper check)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a RunConfig field for every run, e.g. --set inc_epochs=4 (YAML values)")
    ap.add_argument("--only-pairs", action="store_true",
                    help="only the in-workbench baselines and Avalanche's implementations (no DynamicNN rows)")
    ap.add_argument("--optimizer-state", choices=("reset", "keep"), default="reset",
                    help="Adam's state across tasks, the same on both sides (default reset: a fresh Adam per task)")
    ap.add_argument("--no-isolate", action="store_true", help="run in this process (no per-run peak memory)")
    ap.add_argument("--out", default=str(ROOT / "reports" / "benchmarks.md"))
    args = ap.parse_args(argv)

    with_av = not args.no_avalanche
    if with_av:
        try:
            import avalanche  # noqa: F401
        except ImportError:
            print("error: avalanche-lib is not installed; `pip install -e .[bench]` (or make bench), "
                  "or pass --no-avalanche", file=sys.stderr)
            return 2
    base = json.loads(json.dumps(TINY)) if args.tiny else {}
    base["device"] = args.device
    base["optimizer_state"] = args.optimizer_state
    if args.n_tasks:
        base.setdefault("data", {})["n_tasks"] = args.n_tasks
    apply_assignments(base, args.set)
    cfg0 = from_dict(base)
    torch.set_num_threads(args.threads)
    stream = load_stream(cfg0.data)
    build_model(cfg0, stream.n_classes)  # warm the pretrained-convs cache before anything is timed
    names = [n for n in ORDER if (with_av or n in OURS) and (not args.only_pairs or any(n in p for p in PAIRS))]
    device = resolve_device(cfg0.device)
    print(f"# dynnn benchmarks\n\n{machine_line(args.threads)}, torch {torch.__version__}, device {device}; stream: {len(stream)} tasks x "
          f"{stream.n_classes} classes x {cfg0.data.train_per_class} train images; epochs {cfg0.base_epochs} (task 0) "
          f"/ {cfg0.inc_epochs}; batch {cfg0.batch_size}; seeds 0..{args.seeds - 1}\n", flush=True)

    import tempfile
    from tqdm import tqdm

    results: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="dynnn-bench-") as runs_dir, \
            ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), max_tasks_per_child=1) as pool:
        todo = [(s, n) for s in range(args.seeds) for n in names]  # interleaved: ours, theirs, ours, ...
        for seed, name in tqdm(todo, desc="runs", unit="run", file=sys.stderr):
            cfg = cfg0.replace(seed=seed, **OURS.get(name, {"method": "finetune"}))
            # a run folder of its own: nothing cached is reused (our methods would otherwise share a trained task 0,
            # and their wall time would leave it out while Avalanche's includes it)
            folder = Path(runs_dir) / f"seed{seed}-{names.index(name)}"
            args_ = (name, cfg.to_dict(), args.threads, str(folder))
            out = one_run(*args_) if args.no_isolate else pool.submit(one_run, *args_).result()  # a fresh process each
            results[name].append(out)

    rows, by_name = [], {}
    for name in names:
        runs = results[name]
        s = [summarize(np.array(r["matrix"])) for r in runs]
        agg = {k: (float(np.mean([x[k] for x in s])), float(np.std([x[k] for x in s]))) for k in s[0]}
        wall = [r["wall_s"] for r in runs]
        by_name[name] = {"wall": float(np.mean(wall)), **agg}
        rows.append([name, pm(*agg["final"]), pm(*agg["average_accuracy"]), pm(*agg["bwt"]), pm(*agg["overall"]),
                     f"{np.mean(wall):.1f} ± {np.std(wall):.1f}"])
    acc_table = fmt_table(["method", "final row", "average acc.", "BWT", "square", "wall s/run"], rows)
    ratio_rows = [[f"{a} / {b}", f"{by_name[a]['wall'] / by_name[b]['wall']:.2f}"]
                  for a, b in RATIOS if a in by_name and b in by_name]
    agree_rows = []
    for a, b in PAIRS:
        if a in by_name and b in by_name:
            for metric in ("final", "overall"):
                ours = [summarize(np.array(r["matrix"]))[metric] * 100 for r in results[a]]
                theirs = [summarize(np.array(r["matrix"]))[metric] * 100 for r in results[b]]
                p = paired(ours, theirs)
                agree_rows.append([f"{a} vs {b}", {"final": "final row", "overall": "square"}[metric],
                                   f"{p.mean_diff:+.2f} [{p.ci_low:+.2f}, {p.ci_high:+.2f}]",
                                   "no difference found (0 inside)" if p.ci_low <= 0 <= p.ci_high else "**differ**",
                                   f"{by_name[a]['wall'] / by_name[b]['wall']:.2f}"])
    agree_table = fmt_table(["pair", "metric", "ours − Avalanche, paired over seeds [95 % CI]", "verdict",
                             "time ratio ours / Avalanche"], agree_rows)
    res_rows = []
    for name in names:
        r0 = results[name][-1]
        res_rows.append([name, str(r0["heads"]), f"{r0['n_params']:,}", f"{r0['model_bytes'] / 2**20:.2f}",
                         f"{r0['extra_mb']:.2f}",
                         f"{np.mean([r['rss_peak_mb'] for r in results[name]]):.0f}",
                         f"{np.mean([r['rss_peak_mb'] - r['rss_start_mb'] for r in results[name]]):.0f}",
                         "-" if r0["cuda_peak_mb"] is None else f"{np.mean([r['cuda_peak_mb'] for r in results[name]]):.0f}",
                         f"{np.mean([r['infer_us'] for r in results[name]]):.0f}"])
    res_table = fmt_table(["method", "heads", "parameters", "model MB", "replay MB", "peak RSS MB",
                           "RSS growth MB", "CUDA peak MB", "inference µs/image"], res_rows)
    if args.no_isolate:
        res_table += "\n\n(--no-isolate: all runs shared one process, so peak RSS is cumulative.)"

    print("## Accuracy and time (mean ± std over seeds, percent)\n\n" + acc_table + "\n", flush=True)
    if agree_rows:
        print("## In-workbench baselines beside Avalanche's\n\n" + agree_table + "\n", flush=True)
    if ratio_rows:
        print("Wall-time ratio ours / Avalanche (< 1: ours is faster)\n\n" + fmt_table(["pair", "ratio"], ratio_rows) + "\n")
    print("## Size, memory, inference\n\n" + res_table + "\n", flush=True)

    speeds = throughput(cfg0.replace(method="finetune"), 1 if args.tiny else args.epochs, args.rounds, with_av)
    med = {n: statistics.median(v) for n, v in speeds.items()}
    ours_n, bare_n = "ours (dynnn_lib.methods.fit)", "bare PyTorch loop"
    tp_rows = [[n, f"{med[n]:.0f}", f"{min(v):.0f}-{max(v):.0f}", f"{med[n] / med[ours_n]:.2f}"] for n, v in speeds.items()]
    overhead = med[bare_n] / med[ours_n] - 1
    tp_text = (fmt_table(["loop", "images/s (median)", "range", "speed relative to ours"], tp_rows)
               + f"\n\nOur loop's overhead vs the bare loop: {overhead * 100:+.1f} % (target ≤ 10 %)")
    if "Avalanche Naive" in med:
        tp_text += f"; ours is {med[ours_n] / med['Avalanche Naive']:.2f}x Avalanche Naive's speed on the same work"
    tp_text += f".\n{args.rounds} rounds, order rotated each round, {1 if args.tiny else args.epochs} epoch(s) of task 0 per job."
    print("## Training throughput\n\n" + tp_text + "\n", flush=True)

    head = (f"# dynnn benchmarks\n\nMeasured {time.strftime('%Y-%m-%d %H:%M')} on {machine_line(args.threads)}, torch "
            f"{torch.__version__}, device {device}; Adam state {args.optimizer_state} per task on both sides; "
            f"{len(stream)} tasks, seeds 0..{args.seeds - 1}"
            f"{' (--tiny)' if args.tiny else ''}. Command: `python benchmarks/compare.py {' '.join(argv or sys.argv[1:])}`\n")
    text = "\n".join([head, "## Accuracy and time (mean ± std over seeds, percent)\n", acc_table, "",
                      "## In-workbench baselines beside Avalanche's (same stream, network, optimiser, schedule, "
                      "seeds; paired per seed, percent points)\n", agree_table if agree_rows else "(Avalanche not run)", "",
                      "Wall-time ratio ours / Avalanche (< 1: ours is faster)\n",
                      fmt_table(["pair", "ratio"], ratio_rows) if ratio_rows else "(Avalanche not run)", "",
                      "## Size, memory, inference\n", res_table, "", "## Training throughput\n", tp_text, ""])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
