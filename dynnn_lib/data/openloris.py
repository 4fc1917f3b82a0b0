"""Loaders for OpenLORIS-Object as distributed on disk.

Two layouts are understood (``data.root`` points at the folder holding ``train/`` and ``test/``):

* ``openloris-round1`` - the IROS 2019 challenge round 1:
  ``<root>/{train,validation,test}/batch<k>/label.csv`` with columns ``file name`` and ``label`` (a leading
  unnamed index column, as the official baseline writes it, is allowed); image path
  ``<root>/<split>/batch<k>/<file name>``; tasks are the batches in numeric order.
* ``openloris-folders`` - one folder per class inside each task (final round, IIT/torchvision style):
  ``<root>/{train,test}/task<k>/<class name>/*.jpg``; classes are the sorted union of class folder names.

Images are converted to RGB and resized to ``image_size`` x ``image_size`` (the released frames come at
several sizes); with ``resize=False`` all images must already share one size.
Every problem is a :class:`DataError` whose one-line message names the file and the fix.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..config import DataConfig
from ..errors import DataError
from .stream import Stream, Task

SPLITS = ("train", "test")
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _numbered(folder: Path, prefix: str) -> list[Path]:
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := re.fullmatch(prefix + r"(\d+)", p.name))]
    return [p for _, p in sorted(found)]


def _check_root(root: Path, layout: str) -> None:
    if not root.exists():
        raise DataError(f"dataset root {root} does not exist; set data.root to the folder holding train/ and test/")
    for split in SPLITS:
        if not (root / split).is_dir():
            raise DataError(f"{root / split} is missing; the {layout} layout needs {root}/train and {root}/test")


def load_image(path: Path, size: int, resize: bool) -> torch.Tensor:
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if resize and im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise DataError(f"image {path} is listed but does not exist; fix the label file or restore the image") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"image {path} cannot be read ({type(e).__name__}); replace or remove the corrupt file") from None
    return torch.from_numpy(arr).permute(2, 0, 1)


def _stack(images: list[torch.Tensor], paths: list[Path]) -> torch.Tensor:
    if not images:
        return torch.zeros(0, 3, 1, 1, dtype=torch.uint8)
    first = images[0].shape
    for img, p in zip(images, paths):
        if img.shape != first:
            raise DataError(f"images have mixed sizes ({paths[0].name} is {first[2]}x{first[1]}, {p.name} is "
                            f"{img.shape[2]}x{img.shape[1]}); set data.resize=true to resize all to data.image_size")
    return torch.stack(images)


def read_label_csv(path: Path) -> list[tuple[str, int]]:
    """Rows (file name, label) of a round-1 label.csv."""
    if not path.is_file():
        raise DataError(f"{path} is missing; every batch folder needs a label.csv with columns 'file name','label'")
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path} cannot be read as CSV ({type(e).__name__}); it must be a text CSV") from None
    if not rows:
        raise DataError(f"{path} is empty; it needs a header with columns 'file name' and 'label'")
    header = [h.strip() for h in rows[0]]
    if "file name" not in header or "label" not in header:
        raise DataError(f"{path} has columns {header}; expected 'file name' and 'label' (as in the official release)")
    fi, li = header.index("file name"), header.index("label")
    out = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(fi, li):
            raise DataError(f"{path} line {n} has {len(row)} fields, the header has {len(header)}; fix the row")
        try:
            label = int(row[li].strip())
        except ValueError:
            raise DataError(f"{path} line {n}: label {row[li]!r} is not an integer class index") from None
        if label < 0:
            raise DataError(f"{path} line {n}: label {label} is out of range; labels are class indices >= 0")
        out.append((row[fi].strip(), label))
    return out


def _load_round1(cfg: DataConfig, root: Path) -> Stream:
    _check_root(root, "openloris-round1")
    batches = _numbered(root / "train", "batch")
    if not batches:
        raise DataError(f"{root / 'train'} has no batch<k> folders; expected train/batch1, train/batch2, ...")
    splits: dict[str, list[tuple[list[Path], list[int]]]] = {s: [] for s in SPLITS}
    for b in batches:
        for split in SPLITS:
            folder = root / split / b.name
            if not folder.is_dir():
                raise DataError(f"{folder} is missing; {split}/ needs the same batch folders as train/")
            rows = read_label_csv(folder / "label.csv")
            splits[split].append(([folder / f for f, _ in rows], [lab for _, lab in rows]))
    n_classes = 1 + max((max(labels, default=-1) for _, labels in splits["train"]), default=-1)
    names = [str(c) for c in range(n_classes)]
    return _assemble(cfg, splits, names, [f"task {i}: {b.name}" for i, b in enumerate(batches)], "openloris-round1")


def _load_folders(cfg: DataConfig, root: Path) -> Stream:
    _check_root(root, "openloris-folders")
    tasks = _numbered(root / "train", "task")
    if not tasks:
        raise DataError(f"{root / 'train'} has no task<k> folders; expected train/task1/<class>/..., train/task2/...")
    class_names = sorted({c.name for split in SPLITS for t in tasks if (root / split / t.name).is_dir()
                          for c in (root / split / t.name).iterdir() if c.is_dir()})
    index = {c: i for i, c in enumerate(class_names)}
    splits: dict[str, list[tuple[list[Path], list[int]]]] = {s: [] for s in SPLITS}
    for t in tasks:
        for split in SPLITS:
            folder = root / split / t.name
            if not folder.is_dir():
                raise DataError(f"{folder} is missing; {split}/ needs the same task folders as train/")
            paths, labels = [], []
            for c in sorted(p for p in folder.iterdir() if p.is_dir()):
                files = sorted(f for f in c.iterdir() if f.suffix.lower() in IMG_EXTENSIONS)
                paths += files
                labels += [index[c.name]] * len(files)
            if not paths:
                raise DataError(f"{folder} has no images in class folders; expected {folder}/<class>/*.jpg")
            splits[split].append((paths, labels))
    return _assemble(cfg, splits, class_names, [f"task {i}: {t.name}" for i, t in enumerate(tasks)], "openloris-folders")


def _assemble(cfg: DataConfig, splits: dict, class_names: list[str], task_names: list[str], source: str) -> Stream:
    n_classes = len(class_names)
    if n_classes < 2:
        raise DataError(f"the training data has {n_classes} class; classification needs at least 2")
    tasks = []
    for i, name in enumerate(task_names):
        tensors = {}
        for split in SPLITS:
            paths, labels = splits[split][i]
            bad = [lab for lab in labels if lab >= n_classes]
            if bad:
                raise DataError(f"{split} of {name}: label {bad[0]} is out of range 0..{n_classes - 1} "
                                "(no such class in the training data); fix the label file")
            if split == "train" and not paths:
                raise DataError(f"{name} has no training images; every task needs training data")
            tensors[f"{split}_x"] = _stack([load_image(p, cfg.image_size, cfg.resize) for p in paths], paths)
            tensors[f"{split}_y"] = torch.tensor(labels, dtype=torch.int64)
        tasks.append(Task(index=i, name=name, **tensors))
    return Stream(tasks=tasks, n_classes=n_classes, class_names=class_names, source=source)


def load_openloris(cfg: DataConfig) -> Stream:
    root = Path(cfg.root).expanduser()
    if cfg.source == "openloris-round1":
        return _load_round1(cfg, root)
    return _load_folders(cfg, root)
