"""Reading images from disk for any source: decode, resize, cache, assemble a Stream.

Images are converted to RGB and resized to ``image_size`` x ``image_size`` (real frames come at several sizes);
with ``resize=False`` all images must already share one size. Decoding happens once: each split of each task is
written as a uint8 ``.npy`` array into ``<cache_dir>/images/`` (key: the image paths, their sizes and mtimes, the
output size) by a DataLoader with ``data.load_workers`` processes, then read back memory-mapped, so a stream larger
than memory costs only the pages a batch touches. A source lists each task's image paths and labels per split and
calls :func:`assemble`. Every problem is a :class:`DataError` whose one-line message names the file and the fix.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from dynnn_lib.core.config import DataConfig
from dynnn_lib.core.errors import DataError
from dynnn_lib.data.stream import Stream, Task, default_cache_dir

SPLITS = ("train", "test")
OPTIONAL_SPLITS = ("validation",)
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CACHE_VERSION = 1


def image_files(folder: Path) -> list[Path]:
    """The images of one folder (by extension), sorted by name."""
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMG_EXTENSIONS)


def numbered(folder: Path, prefix: str) -> list[Path]:
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := re.fullmatch(prefix + r"(\d+)", p.name))]
    return [p for _, p in sorted(found)]


def check_root(root: Path, layout: str) -> None:
    if not root.exists():
        raise DataError(f"dataset root {root} does not exist; set data.root to the folder holding train/ and test/")
    for split in SPLITS:
        if not (root / split).is_dir():
            raise DataError(f"{root / split} is missing; the {layout} layout needs {root}/train and {root}/test")


def splits_present(root: Path) -> tuple[str, ...]:
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


def assemble(cfg: DataConfig, splits: dict, class_names: list[str], task_names: list[str], source: str,
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


