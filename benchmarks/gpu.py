"""One short prepared script for a machine with a CUDA GPU:

    python benchmarks/gpu.py [--jobs 4] [--out $OUT]        # writes gpu.md and gpu.json to --out (default reports/)

1. Our loop (methods.fit) against a bare PyTorch loop on the same model and images on the GPU: task 0's training
   (trunk + head) and a head on frozen-trunk features, images/s, medians of rotated rounds (CUDA synchronised).
2. The schedule landscape for one seed (every schedule of the embedded 9-task stream, device=cuda) as a tree.
3. make all's training phase on the GPU: the fidelity runs (5 seeds, 2 instances, both stand-ins) as a tree.
Every figure names the GPU and the CPU. Without a GPU it says so and exits 0: the test suite never needs one
(RunConfig.device="auto" takes a GPU when one is present, the CPU otherwise).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from dynnn_lib import from_dict  # noqa: E402
from dynnn_lib.core.fingerprint import machine_line  # noqa: E402
from dynnn_lib.data import load_stream  # noqa: E402
from dynnn_lib.evaluation.outputs import to_float  # noqa: E402
from dynnn_lib.methods import fit  # noqa: E402
from dynnn_lib.model.build import build_model  # noqa: E402


def _timed(fn, images: int, rounds: int = 5) -> float:
    fn()
    torch.cuda.synchronize()
    speeds = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        speeds.append(images / (time.perf_counter() - t))
    return statistics.median(speeds)


def loops(epochs: int = 2) -> dict:
    dev = torch.device("cuda")
    cfg = from_dict({"device": "cuda"})
    stream = load_stream(cfg.data)
    x, y = stream.tasks[0].train_x, stream.tasks[0].train_y
    model = build_model(cfg, stream.n_classes).to(dev)
    full = nn.Sequential(model.trunk, model.heads[0])
    yd = y.to(dev)

    def ours(net, inputs):
        return lambda: fit(copy.deepcopy(net), lambda out, idx: F.cross_entropy(out, yd[idx]), inputs, epochs=epochs,
                           lr=cfg.base_lr, milestones=(), gamma=cfg.lr_gamma, batch_size=cfg.batch_size, augment=False,
                           gen=torch.Generator().manual_seed(0), device=dev)

    def bare(net, inputs):
        def go():
            m = copy.deepcopy(net)
            opt = torch.optim.Adam(m.parameters(), lr=cfg.base_lr)
            xs = inputs.to(dev)
            perm = torch.randperm(len(xs), generator=torch.Generator().manual_seed(0))
            for _ in range(epochs):
                for i in range(0, len(xs), cfg.batch_size):
                    idx = perm[i:i + cfg.batch_size].to(dev)
                    loss = F.cross_entropy(m(to_float(xs[idx]).contiguous(memory_format=torch.channels_last)), yd[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
        return go

    with torch.no_grad():
        feats = model.trunk(to_float(x.to(dev)).contiguous(memory_format=torch.channels_last))
    n = len(x) * epochs
    out = {"full: ours": _timed(ours(full, x), n), "full: bare loop": _timed(bare(full, x), n),
           "head: ours": _timed(ours(model.heads[0], feats), n), "head: bare loop": _timed(bare(model.heads[0], feats), n)}
    return {k: round(v) for k, v in out.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=4, help="runs at a time on the one GPU (default 4)")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "reports"))
    ap.add_argument("--skip-make-all", action="store_true", help="only the loops and the landscape")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU here: nothing to measure (the test suite never needs one)")
        return 0
    from dynnn_lib.engine.executors import train_tree
    from dynnn_lib.experiments import schedules as sch
    from dynnn_lib.experiments.catalogue import paper_configs

    os.environ.setdefault("DYNNN_RUNS", str(Path(args.out) / "gpu-runs"))
    res = {"gpu": torch.cuda.get_device_name(0), "cpu": machine_line(), "torch": torch.__version__,
           "images_per_s": loops()}
    t = time.perf_counter()
    land = sch.landscape({"device": "cuda"}, seeds=[0], jobs=args.jobs, progress=False)
    res["landscape"] = {"wall_s": time.perf_counter() - t, **land.stats.to_dict(), "best": list(land.best())}
    if not args.skip_make_all:
        configs = paper_configs(5, [0, 1], {"device": "cuda"}, streams=["round1-calibrated", "round1"])
        res["make_all_training"] = train_tree(configs, jobs=args.jobs, progress=False).to_dict()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps(res, indent=1, default=float))
    lines = [f"# On a GPU: {res['gpu']} (host {res['cpu']}, torch {res['torch']})", "",
             "| loop | images/s |", "|---|---|", *(f"| {k} | {v} |" for k, v in res["images_per_s"].items()), "",
             f"Landscape, 1 seed, 256 schedules: {res['landscape']['trained_tasks']} task trainings in "
             f"{res['landscape']['wall_s'] / 60:.1f} min ({args.jobs} runs at a time)."]
    if "make_all_training" in res:
        m = res["make_all_training"]
        lines.append(f"make all's fidelity runs: {m['runs']} runs, {m['trained_tasks']} task trainings in "
                     f"{m['wall_s'] / 60:.1f} min.")
    (out / "gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
