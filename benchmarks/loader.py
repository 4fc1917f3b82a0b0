"""Real-data loading: our on-disk cache vs torchvision ImageFolder + DataLoader, and peak memory vs stream length.

    python benchmarks/loader.py                       # defaults: 9 tasks x (2,000 train + 500 test) 224 px JPEGs
    python benchmarks/loader.py --train 10550 --test 3517 --workers 2   # round-1 sizes (tens of minutes)
    python benchmarks/loader.py --tiny                # seconds; proves the script works

A fixture in the dataset's current layout (train/test/illumination/segment<k>/<instance>/*.jpg, 51 instances like
round 1) is generated in a temporary folder (or --keep DIR). Then, each in a fresh subprocess:

1. ours, cold: ``load_stream`` with an empty cache - every image decoded, resized and written once into the
   memory-mapped cache by ``--workers`` DataLoader processes (a one-time cost per dataset and image size);
2. ours, warm: ``load_stream`` on the filled cache, then one epoch of shuffled batches over every task's training
   images as ``methods.fit`` reads them (``train_x[idx]`` -> float);
3. torchvision: ``ImageFolder(Resize((size, size)), PILToTensor())`` + ``DataLoader(shuffle, same batch size,
   same workers)``, one epoch over every task's training images (decoding every epoch: that is what it does);
4. peak memory, 3 vs all tasks: ``ru_maxrss`` of a process that loads the stream (warm cache) and reads every
   task's train and test images once in batches, and the peak of its anonymous memory (RssAnon, sampled after
   every batch). ru_maxrss counts the clean file-backed pages of the memory map that were touched (the kernel
   drops them under memory pressure); RssAnon is the memory the process itself holds.

The files are in the page cache after generation for both loaders (a cold disk is slower for both).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> str:
    import torch

    from dynnn_lib.core.fingerprint import cpu

    c = cpu()
    return (f"{c['model']} (CPU family {c['family']}, model {c['model_number']}); {os.cpu_count()} logical CPUs "
            f"({len(os.sched_getaffinity(0))} usable); torch {torch.__version__} with {torch.get_num_threads()} "
            f"intra-op threads")


def _make_image(args):
    path, label, size, seed = args
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    small[..., label % 3] = 200
    img = Image.fromarray(small).resize((size, size), Image.BICUBIC)
    arr = np.asarray(img, dtype=np.int16) + rng.integers(-12, 12, (size, size, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(path, quality=90)


def make_fixture(root: Path, tasks: int, train: int, test: int, instances: int, size: int, procs: int) -> None:
    from multiprocessing import Pool

    jobs = []
    for split, n in (("train", train), ("test", test)):
        for k in range(1, tasks + 1):
            for i in range(n):
                inst = i % instances
                jobs.append((root / split / "illumination" / f"segment{k}" / f"object_{inst:02d}" / f"{i:05d}.jpg",
                             inst, size, hash((split, k, i)) % 2**32))
    with Pool(procs) as pool:
        pool.map(_make_image, jobs, chunksize=64)


def _cfg(root: str, cache: str, size: int, workers: int, n_tasks: int | None):
    from dynnn_lib import DataConfig

    return DataConfig(source="openloris-benchmark1", factor="illumination", root=root, cache_dir=cache,
                      image_size=size, load_workers=workers, n_tasks=n_tasks)


def _rss_anon_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0


# ------------------------------------------------------------------ the measurements (each in a subprocess)
def measure(kind: str, root: str, cache: str, size: int, workers: int, batch: int, n_tasks: int | None) -> dict:
    import torch

    from dynnn_lib.data import load_stream

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    if kind == "ours_cold":
        stream = load_stream(_cfg(root, cache, size, workers, n_tasks))
        n = sum(len(t.train_y) + len(t.test_y) for t in stream.tasks)
        return {"images": n, "seconds": time.perf_counter() - t0}
    if kind == "ours_warm":
        stream = load_stream(_cfg(root, cache, size, workers, n_tasks))
        opened = time.perf_counter() - t0
        g = torch.Generator().manual_seed(0)
        n = 0
        for t in stream.tasks:
            perm = torch.randperm(len(t.train_x), generator=g)
            for i in range(0, len(perm), batch):
                xb = t.train_x[perm[i:i + batch]].float().div_(255)
                n += len(xb)
        return {"images": n, "seconds": time.perf_counter() - t0, "open_s": opened}
    if kind == "torchvision":
        from torchvision import transforms
        from torchvision.datasets import ImageFolder

        tf = transforms.Compose([transforms.Resize((size, size)), transforms.PILToTensor()])
        segs = sorted((Path(root) / "train" / "illumination").iterdir(), key=lambda p: int(p.name[7:]))
        n = 0
        for seg in segs[:n_tasks]:
            loader = torch.utils.data.DataLoader(ImageFolder(str(seg), transform=tf), batch_size=batch, shuffle=True,
                                                 num_workers=workers, generator=torch.Generator().manual_seed(0))
            for xb, _ in loader:
                xb = xb.float().div_(255)
                n += len(xb)
        return {"images": n, "seconds": time.perf_counter() - t0}
    if kind == "memory":
        from dynnn_lib.evaluation.outputs import EVAL_BATCH

        stream = load_stream(_cfg(root, cache, size, workers, n_tasks))
        peak_anon = _rss_anon_kb()
        for t in stream.tasks:
            for x in (t.train_x, t.test_x):
                for i in range(0, len(x), EVAL_BATCH):
                    x[i:i + EVAL_BATCH].float().div_(255)
                    peak_anon = max(peak_anon, _rss_anon_kb())
        return {"tasks": len(stream), "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "peak_anon_mb": peak_anon / 1024}
    raise ValueError(kind)


def _sub(kind: str, args, n_tasks: int | None) -> dict:
    cmd = [sys.executable, __file__, "--_measure", kind, "--_root", args._root, "--_cache", args._cache,
           "--size", str(args.size), "--workers", str(args.workers), "--batch", str(args.batch)]
    if n_tasks is not None:
        cmd += ["--_n_tasks", str(n_tasks)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{kind} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=9)
    ap.add_argument("--train", type=int, default=2000, help="training images per task (round 1: 10,550)")
    ap.add_argument("--test", type=int, default=500, help="test images per task (round 1: 3,517)")
    ap.add_argument("--instances", type=int, default=51, help="classes (round 1: 51 instances)")
    ap.add_argument("--src-size", type=int, default=224, help="side of the generated JPEGs")
    ap.add_argument("--size", type=int, default=224, help="data.image_size the loaders resize to")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers, the same for both loaders")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--keep", help="generate the fixture here (reused when it exists) instead of a temp folder")
    ap.add_argument("--tiny", action="store_true", help="4 tasks x 50 images at 64 px: seconds")
    ap.add_argument("--_measure")
    ap.add_argument("--_root")
    ap.add_argument("--_cache")
    ap.add_argument("--_n_tasks", type=int)
    args = ap.parse_args(argv)
    if args._measure:
        print(json.dumps(measure(args._measure, args._root, args._cache, args.size, args.workers, args.batch,
                                 args._n_tasks)))
        return 0
    if args.tiny:
        args.tasks, args.train, args.test, args.instances, args.src_size, args.size = 4, 40, 10, 5, 64, 64
    small = min(3, args.tasks)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp) / "lor"
        print(f"machine: {machine()}")
        t0 = time.perf_counter()
        if not (root / "train").exists():
            make_fixture(root, args.tasks, args.train, args.test, args.instances, args.src_size, os.cpu_count() or 1)
        print(f"fixture: {args.tasks} tasks x ({args.train} train + {args.test} test) {args.src_size} px JPEGs, "
              f"{args.instances} classes, at {root} ({time.perf_counter() - t0:.0f} s to make)")
        print(f"loaders: resize to {args.size} px, batch {args.batch}, {args.workers} DataLoader workers\n")
        args._root = str(root)
        rows = []
        for label, kind, cache in (("ours, cold cache (decode+resize+write once)", "ours_cold", "cold"),
                                   ("ours, warm cache (one epoch of shuffled batches)", "ours_warm", "cold"),
                                   ("torchvision ImageFolder + DataLoader (one epoch)", "torchvision", "cold")):
            args._cache = str(Path(tmp) / cache)
            r = _sub(kind, args, None)
            rows.append((label, r["images"], r["seconds"]))
        print(f"| loader | images | seconds | images/s |\n|---|---:|---:|---:|")
        for label, n, s in rows:
            print(f"| {label} | {n} | {s:.1f} | {n / s:,.0f} |")
        print(f"\nwarm / torchvision: {rows[1][1] / rows[1][2] / (rows[2][1] / rows[2][2]):.1f}x per epoch")
        print("\n| tasks loaded and read once | ru_maxrss (MB) | peak anonymous RSS (MB) |\n|---:|---:|---:|")
        args._cache = str(Path(tmp) / "cold")
        for n in sorted({small, args.tasks}):
            r = _sub("memory", args, n if n < args.tasks else None)
            print(f"| {r['tasks']} | {r['maxrss_mb']:.0f} | {r['peak_anon_mb']:.0f} |")
        cache_mb = sum(f.stat().st_size for f in (Path(tmp) / "cold").rglob("*.npy")) / 2**20
        print(f"\non-disk cache: {cache_mb:.0f} MB for {args.tasks} tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
