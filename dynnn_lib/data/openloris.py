"""Loaders for OpenLORIS-Object as distributed on disk.

Three layouts are understood (``data.root`` points at the folder holding ``train/``, ``test/`` and, when the
release has it, ``validation/``):

* ``openloris-round1`` - the IROS 2019 challenge round 1 [S: the official baseline's evaluate.py]:
  ``<root>/{train,validation,test}/batch<k>/label.csv`` with columns ``file name`` and ``label`` (a leading
  unnamed index column, as the official baseline writes it, is allowed); image path
  ``<root>/<split>/batch<k>/<file name>``; tasks are the batches in numeric order.
* ``openloris-folders`` - one folder per class inside each task (final round, IIT/torchvision style):
  ``<root>/{train,validation,test}/task<k>/<class name>/*.jpg``; classes are the sorted union of class folders.
* the dataset's current download layout, as the OpenLORIS-Object benchmark code reads it [S: benchmark1.py,
  benchmark2.py]: ``<root>/{train,validation,test}/<factor>/segment<k>/<instance>/*.jpg`` with factor in
  clutter, illumination, occlusion, pixel; classes are the sorted union of instance folder names (our choice:
  the benchmark code's own class order is its hard-coded ``datapath`` list). Two named streams:

  - ``openloris-benchmark1`` - one factor (``data.factor``), its segments in numeric order, one task each
    (9 tasks: 3 levels x 3 views) [S]. Segments 1-3/4-6/7-9 being levels 1/2/3 is our reading [I]; it is only
    used to label the task (``task.factors``).
  - ``openloris-benchmark2`` - the 12 tasks of all factors in sequence, one per factor and level [S: dataset
    page, "12 tasks, ~14,400 train images per task"]. A task here is the 3 segments of one level merged [I: the
    per-task count matches 69 instances x 260 frames of one level]; factors in the order benchmark2.py copies
    them (illumination, occlusion, pixel, clutter) [S]. (benchmark2.py copies 36 segments and main.py then
    keeps the first 12, i.e. illumination 1-9 and occlusion 1-3, which contradicts the page's "4 factors x 3
    levels"; we follow the page.)

The ``validation`` split is optional: when ``<root>/validation`` exists every task needs its validation folder,
and it is what the expansion decision reads (``data.decide_on``, stream.decision_set); the accuracy matrix
always uses ``test``.

Images are converted to RGB and resized to ``image_size`` x ``image_size`` (the released frames come at
several sizes); with ``resize=False`` all images must already share one size. Decoding happens once: each
split of each task is written as a uint8 ``.npy`` array into ``<cache_dir>/images/`` (key: the image paths,
their sizes and mtimes, the output size) by a DataLoader with ``data.load_workers`` processes, then read back
memory-mapped, so a stream larger than memory costs only the pages a batch touches.
Every problem is a :class:`DataError` whose one-line message names the file and the fix.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from dynnn_lib.core.config import FACTORS, DataConfig
from dynnn_lib.core.errors import DataError
from dynnn_lib.data.stream import Stream, Task, default_cache_dir

SPLITS = ("train", "test")
OPTIONAL_SPLITS = ("validation",)
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
BENCHMARK2_FACTORS = ("illumination", "occlusion", "pixel", "clutter")  # benchmark2.py's order
SEGMENTS_PER_LEVEL = 3
CACHE_VERSION = 1


def _numbered(folder: Path, prefix: str) -> list[Path]:
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := re.fullmatch(prefix + r"(\d+)", p.name))]
    return [p for _, p in sorted(found)]


def _check_root(root: Path, layout: str) -> None:
    if not root.exists():
        raise DataError(f"dataset root {root} does not exist; set data.root to the folder holding train/ and test/")
    for split in SPLITS:
        if not (root / split).is_dir():
            raise DataError(f"{root / split} is missing; the {layout} layout needs {root}/train and {root}/test")


def _splits(root: Path) -> tuple[str, ...]:
    """train, test, and validation when the release has it."""
    return SPLITS + tuple(s for s in OPTIONAL_SPLITS if (root / s).is_dir())


def _decode(path: Path, size: int, resize: bool) -> np.ndarray:
    """(H, W, 3) uint8 array of one image."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if resize and im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise DataError(f"image {path} is listed but does not exist; fix the label file or restore the image") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"image {path} cannot be read ({type(e).__name__}); replace or remove the corrupt file") from None


def load_image(path: Path, size: int, resize: bool) -> torch.Tensor:
    """(3, H, W) uint8 tensor of one image."""
    return torch.from_numpy(_decode(path, size, resize)).permute(2, 0, 1)


def _mixed(first: Path, first_hw: tuple[int, int], other: Path, hw: tuple[int, int]) -> DataError:
    return DataError(f"images have mixed sizes ({first.name} is {first_hw[1]}x{first_hw[0]}, {other.name} is "
                     f"{hw[1]}x{hw[0]}); set data.resize=true to resize all to data.image_size")


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
    splits: dict[str, list[tuple[list[Path], list[int]]]] = {s: [] for s in _splits(root)}
    for b in batches:
        for split in splits:
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
    present = _splits(root)
    class_names = sorted({c.name for split in present for t in tasks if (root / split / t.name).is_dir()
                          for c in (root / split / t.name).iterdir() if c.is_dir()})
    index = {c: i for i, c in enumerate(class_names)}
    splits: dict[str, list[tuple[list[Path], list[int]]]] = {s: [] for s in present}
    for t in tasks:
        for split in present:
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


class _Images(torch.utils.data.Dataset):
    """Decodes one image per item; a problem comes back as a message (a DataLoader worker's exception would
    reach the user as a multi-line traceback)."""

    def __init__(self, paths: list[Path], size: int, resize: bool):
        self.paths, self.size, self.resize = paths, size, resize

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            return i, _decode(self.paths[i], self.size, self.resize), None
        except DataError as e:
            return i, None, str(e)


def _collate(items):
    return items


def cache_key(paths: list[Path], size: int, resize: bool) -> str:
    """Hash of the file list (path, size, mtime) and the decoding settings: any change re-decodes."""
    from dynnn_lib.core.fingerprint import DECODE_ENTRY, module_fingerprint

    h = hashlib.sha256(json.dumps({"v": CACHE_VERSION, "code": module_fingerprint(DECODE_ENTRY), "size": size,
                                   "resize": resize}).encode())
    for p in paths:
        try:
            st = p.stat()
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}\0missing\n".encode())  # decoding will name it
    return h.hexdigest()[:24]


def cached_images(paths: list[Path], size: int, resize: bool, cache_dir: Path, workers: int = 0) -> torch.Tensor:
    """(N, 3, H, W) uint8 tensor of `paths`, memory-mapped from ``<cache_dir>/images/<key>.npy`` (decoded and
    written once, by `workers` DataLoader processes; concurrent runs wait on a lock and share the file)."""
    from dynnn_lib.core.store import exclusive_lock

    if not paths:
        return torch.zeros(0, 3, size, size, dtype=torch.uint8)
    folder = cache_dir / "images"
    path = folder / f"{cache_key(paths, size, resize)}.npy"
    if not path.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with exclusive_lock(folder / f".{path.stem}.lock"):
                if not path.exists():
                    _write_cache(paths, size, resize, path, workers)
        except OSError as e:
            raise DataError(f"cannot write the image cache in {folder} ({type(e).__name__}: {e.strerror or e}); "
                            "set data.cache_dir or $DYNNN_CACHE to a writable folder with space") from None
    try:
        arr = np.load(path, mmap_mode="c")  # copy-on-write: writable for torch, the file is never changed
    except (OSError, ValueError) as e:
        raise DataError(f"the image cache {path} cannot be read ({type(e).__name__}); delete it to decode again") from None
    return torch.from_numpy(arr)


def _write_cache(paths: list[Path], size: int, resize: bool, path: Path, workers: int) -> None:
    """Decode `paths` (in order, `workers` DataLoader processes) into the .npy file `path`, written batch by batch
    with plain file writes (a writable memory map would keep every written page in this process's memory)."""
    if resize:
        hw = (size, size)
    else:  # every image must have the first one's size
        hw = _decode(paths[0], size, False).shape[:2]
    tmp = path.with_name(f"{path.stem}.tmp-{os.getpid()}.npy")
    import multiprocessing

    if multiprocessing.current_process().daemon:
        workers = 0  # a daemonic process (e.g. a multiprocessing.Pool worker) may not start worker processes
    loader = torch.utils.data.DataLoader(_Images(paths, size, resize), batch_size=64, num_workers=workers,
                                         collate_fn=_collate)
    try:
        with open(tmp, "wb") as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                     "shape": (len(paths), 3, *hw)})
            expected = 0
            for items in loader:  # the DataLoader keeps the order
                for i, img, err in items:
                    if err is not None:
                        raise DataError(err)
                    if img.shape[:2] != hw:
                        raise _mixed(paths[0], hw, paths[i], img.shape[:2])
                    assert i == expected
                    expected += 1
                    fh.write(np.ascontiguousarray(img.transpose(2, 0, 1)).tobytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _assemble(cfg: DataConfig, splits: dict, class_names: list[str], task_names: list[str], source: str,
              factors: list[dict[str, str]] | None = None) -> Stream:
    """`splits[split][i]` = (paths, labels) of task i: decode (or read from the cache) into a Stream."""
    n_classes = len(class_names)
    if n_classes < 2:
        raise DataError(f"the training data has {n_classes} class; classification needs at least 2")
    cache = (Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir())
    tasks = []
    for i, name in enumerate(task_names):
        tensors = {}
        for split in splits:
            paths, labels = splits[split][i]
            bad = [lab for lab in labels if lab >= n_classes]
            if bad:
                raise DataError(f"{split} of {name}: label {bad[0]} is out of range 0..{n_classes - 1} "
                                "(no such class in the training data); fix the label file")
            if split == "train" and not paths:
                raise DataError(f"{name} has no training images; every task needs training data")
            prefix = "val" if split == "validation" else split
            tensors[f"{prefix}_x"] = cached_images(paths, cfg.image_size, cfg.resize, cache, cfg.load_workers)
            tensors[f"{prefix}_y"] = torch.tensor(labels, dtype=torch.int64)
        tasks.append(Task(index=i, name=name, factors=(factors or [{}] * len(task_names))[i], **tensors))
    return Stream(tasks=tasks, n_classes=n_classes, class_names=class_names, source=source)


def _instance_images(folder: Path) -> tuple[list[Path], list[str]]:
    """Images of ``<folder>/<instance>/*`` and their instance names."""
    paths, names = [], []
    for inst in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(f for f in inst.iterdir() if f.suffix.lower() in IMG_EXTENSIONS)
        paths += files
        names += [inst.name] * len(files)
    if not paths:
        raise DataError(f"{folder} has no images in instance folders; expected {folder}/<instance>/*.jpg")
    return paths, names


def _segments(root: Path, factor: str, source: str) -> list[Path]:
    folder = root / "train" / factor
    if not folder.is_dir():
        raise DataError(f"{folder} is missing; the {source} layout needs {root}/<split>/<factor>/segment<k>/<instance>/"
                        f"*.jpg with factor one of {', '.join(FACTORS)}")
    segs = _numbered(folder, "segment")
    if not segs:
        raise DataError(f"{folder} has no segment<k> folders; expected {folder}/segment1/<instance>/*.jpg, ...")
    return segs


def _load_factors(cfg: DataConfig, root: Path) -> Stream:
    """openloris-benchmark1 / -benchmark2: the dataset's current layout (module docstring)."""
    source = cfg.source
    _check_root(root, source)
    splits_present = _splits(root)
    tasks: list[tuple[str, list[str], dict[str, str]]] = []  # (name, [factor/segment<k>...], factors)
    if source == "openloris-benchmark1":
        for k, seg in enumerate(_segments(root, cfg.factor, source)):
            level = k // SEGMENTS_PER_LEVEL + 1
            tasks.append((f"task {k}: {cfg.factor} {seg.name}", [f"{cfg.factor}/{seg.name}"],
                          {cfg.factor: f"level {level}"}))
    else:
        for factor in BENCHMARK2_FACTORS:
            segs = _segments(root, factor, source)
            for lv in range(0, len(segs), SEGMENTS_PER_LEVEL):
                group = segs[lv:lv + SEGMENTS_PER_LEVEL]
                level = lv // SEGMENTS_PER_LEVEL + 1
                tasks.append((f"task {len(tasks)}: {factor} level {level} ({group[0].name}-{group[-1].name})",
                              [f"{factor}/{s.name}" for s in group], {factor: f"level {level}"}))
    found: dict[str, list[tuple[list[Path], list[str]]]] = {s: [] for s in splits_present}
    for _, rels, _ in tasks:
        for split in splits_present:
            paths, names = [], []
            for rel in rels:
                folder = root / split / rel
                if not folder.is_dir():
                    raise DataError(f"{folder} is missing; {split}/ needs the same factor/segment folders as train/")
                p, n = _instance_images(folder)
                paths += p
                names += n
            found[split].append((paths, names))
    class_names = sorted({n for split in found.values() for _, names in split for n in names})
    index = {c: i for i, c in enumerate(class_names)}
    splits = {s: [(p, [index[n] for n in names]) for p, names in found[s]] for s in splits_present}
    return _assemble(cfg, splits, class_names, [t[0] for t in tasks], source, [t[2] for t in tasks])


def load_openloris(cfg: DataConfig) -> Stream:
    root = Path(cfg.root).expanduser()
    if cfg.source == "openloris-round1":
        return _load_round1(cfg, root)
    if cfg.source in ("openloris-benchmark1", "openloris-benchmark2"):
        return _load_factors(cfg, root)
    return _load_folders(cfg, root)
