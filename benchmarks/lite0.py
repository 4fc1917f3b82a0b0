"""What one task's training costs with the EfficientNet-Lite0 ImageNet trunk against `small`, side by side in one run.

    python benchmarks/lite0.py                       # writes reports/lite0.md (minutes: Lite0 trains at every size)
    python benchmarks/lite0.py --tiny                # seconds; checks the script, its numbers mean nothing

For `small` (the default backbone) at 32 px and for `efficientnet_lite0` (ImageNet weights, frozen statistics, a fresh GroupNorm head) at each
``--sizes`` input size, on the same generated images (task 0 of the default stream, rendered at that size, the first
``--images`` of them), with our training loop (methods.fit: Adam, the run's batch size, flips):

* full: one epoch of trunk + head, what task 0 costs every method and every task costs the methods that train the
  trunk (finetune, lwf, ewc, replay, joint);
* features: the frozen trunk's forward pass once over the images, what a frozen-trunk task (kd, expand, combined)
  pays once, since it computes a task's trunk features a single time (methods/dynamicnn/frozen_trunk.py);
* head: one epoch of a head alone on those features, what such a task pays per epoch.

Jobs rotate over ``--rounds`` rounds, medians are reported, as ms per image and as seconds per task of the default
configuration (its images per task and epochs): task 0 = base_epochs x full, a frozen-trunk task = features +
inc_epochs x head, a trunk-training task = inc_epochs x full, each with its ratio to `small`'s. Threads: the count
runs are pinned to (DYNNN_THREADS, default 1). Timings are of the machine named in the report's first lines; other
machines can be 2-3x slower, the ratios travel better.
"""
from __future__ import annotations

import argparse
import copy
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
from dynnn_lib.core.fingerprint import threads  # noqa: E402
from dynnn_lib.data import load_stream  # noqa: E402
from dynnn_lib.experiments.arms import LITE0  # noqa: E402
from dynnn_lib.evaluation.outputs import to_float, trunk_features  # noqa: E402
from dynnn_lib.methods import fit  # noqa: E402
from dynnn_lib.model.build import build_model  # noqa: E402
from speed import fmt, forward_flops, machine, rotate  # noqa: E402

TINY_DATA = {"n_tasks": 2, "n_classes": 4, "train_per_class": 4, "test_per_class": 2}
KINDS = ("full", "features", "head")
BACKBONES = {"small": {"backbone": "small", "pretrained": False},
             "efficientnet_lite0": LITE0}  # as Lite0 learns: frozen statistics, lr 3e-4 (model/lite0.py)


def setups(sizes: list[int], tiny: bool) -> list[tuple[str, dict]]:
    """(label, config values) of every job family: `small` at 32 px, then Lite0 at each size."""
    data = TINY_DATA if tiny else {}
    out = [("small @32", {**BACKBONES["small"], "data": {**data, "image_size": 32}})]
    out += [(f"efficientnet_lite0 @{s}", {**BACKBONES["efficientnet_lite0"], "data": {**data, "image_size": s}})
            for s in sizes]
    return out


def jobs_for(values: dict, images: int) -> tuple[dict, int, dict]:
    """The three timed jobs of one backbone and size (closures), the image count, and forward FLOPs per image."""
    cfg = from_dict(values)
    stream = load_stream(cfg.data)
    x, y = stream.tasks[0].train_x[:images], stream.tasks[0].train_y[:images]
    model = build_model(cfg, stream.n_classes)
    full, head = nn.Sequential(model.trunk, model.heads[0]), model.heads[0]
    feats = trunk_features(model, x, torch.device("cpu"))

    def train(net, inputs, augment):
        def go():
            fit(copy.deepcopy(net), lambda out, idx: F.cross_entropy(out, y[idx]), inputs, epochs=1, lr=cfg.base_lr,
                milestones=(), gamma=cfg.lr_gamma, batch_size=cfg.batch_size, augment=augment,
                gen=torch.Generator().manual_seed(0), device=torch.device("cpu"))
        return go

    jobs = {"full": train(full, x, True), "features": lambda: trunk_features(model, x, torch.device("cpu")),
            "head": train(head, feats, False)}
    flops = {"trunk": forward_flops(model.trunk, to_float(x[:1])), "head": forward_flops(head, feats[:1])}
    return jobs, len(x), flops


def per_task(ms: dict[str, float], defaults) -> dict[str, float]:
    """Seconds per task of the default configuration from ms per image: task 0, a frozen-trunk task, a trunk task."""
    n = defaults.data.n_classes * defaults.data.train_per_class
    return {"task 0": defaults.base_epochs * ms["full"] * n / 1e3,
            "frozen-trunk task": (ms["features"] + defaults.inc_epochs * ms["head"]) * n / 1e3,
            "trunk-training task": defaults.inc_epochs * ms["full"] * n / 1e3}


def measure(sizes: list[int], images: int, rounds: int, tiny: bool) -> tuple[dict, dict]:
    """ms per image of every job, and forward FLOPs per image, by setup label."""
    jobs, flops, counts = {}, {}, {}
    for label, values in setups(sizes, tiny):
        jobs[label], counts[label], flops[label] = jobs_for(values, images)
    ms: dict[str, dict[str, float]] = {label: {} for label in jobs}
    for kind in KINDS:  # a kind's jobs rotate together: the same work on each backbone and size
        for label, calls_per_s in rotate({label: own[kind] for label, own in jobs.items()}, 1, rounds).items():
            ms[label][kind] = 1e3 / calls_per_s / counts[label]
    return ms, flops


def report(ms: dict, flops: dict, defaults, args) -> str:
    base = "small @32"
    rows = [[label, f"{(f['trunk'] + f['head']) / 1e6:.1f}", f"{ms[label]['full']:.2f}",
             f"{ms[label]['full'] / ms[base]['full']:.0f}x", f"{ms[label]['features']:.2f}", f"{ms[label]['head']:.2f}",
             f"{ms[label]['head'] / ms[base]['head']:.1f}x"] for label, f in flops.items()]
    tasks = {label: per_task(v, defaults) for label, v in ms.items()}
    task_rows = [[label, *(f"{s:.0f} ({s / tasks[base][k]:.0f}x)" for k, s in t.items())] for label, t in tasks.items()]
    n = defaults.data.n_classes * defaults.data.train_per_class
    return "\n".join([
        f"# EfficientNet-Lite0 vs small: one task's training ({time.strftime('%Y-%m-%d')})", "",
        f"Machine: {machine()}. Timings are this machine's; other machines can be 2-3x slower.",
        f"{args.images} images of task 0 per job, {args.rounds} rotated rounds, medians.", "",
        fmt(["backbone @ input px", "forward MFLOPs/image", "full ms/image", "vs small", "features ms/image",
             "head ms/image", "head vs small"], rows), "",
        f"Seconds per task of the default configuration ({n} images, base_epochs={defaults.base_epochs}, "
        f"inc_epochs={defaults.inc_epochs}), and ratio to small:", "",
        fmt(["backbone @ input px", "task 0 (full)", "frozen-trunk task (features + head)",
             "trunk-training task (full)"], task_rows), ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64], help="Lite0 input sizes (px) to time")
    ap.add_argument("--images", type=int, default=128, help="images per timed job (task 0's first ones)")
    ap.add_argument("--rounds", type=int, default=3, help="rotated rounds (median reported)")
    ap.add_argument("--tiny", action="store_true", help="tiny stream, one round: checks the script in seconds")
    ap.add_argument("--out", default=str(ROOT / "reports" / "lite0.md"))
    args = ap.parse_args(argv)
    if args.tiny:
        args.sizes, args.images, args.rounds = [32], 8, 1
    try:
        torch.set_num_threads(threads())
        ms, flops = measure(args.sizes, args.images, args.rounds, args.tiny)
        text = report(ms, flops, from_dict({}), args)
    except DynnnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
