"""OpenLORIS-Object as distributed on disk: four sources, one per layout and protocol.

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

Images are decoded, resized and cached by data/images.py. Task counts read folder names and the label files'
folders only (:meth:`count_tasks`: nothing is decoded). Every problem is a :class:`DataError` whose one-line
message names the file and the fix.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

from dynnn_lib.core.config import DataConfig
from dynnn_lib.core.errors import ConfigError, DataError
from dynnn_lib.core.streams import BENCHMARK2_FACTORS, FACTORS, SEGMENTS_PER_LEVEL
from dynnn_lib.data.images import assemble, check_root, image_files, numbered, splits_present
from dynnn_lib.data.source import Source, register
from dynnn_lib.data.stream import Stream


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
    check_root(root, "openloris-round1")
    batches = numbered(root / "train", "batch")
    if not batches:
        raise DataError(f"{root / 'train'} has no batch<k> folders; expected train/batch1, train/batch2, ...")
    splits: dict[str, list[tuple[list[Path], list[int]]]] = {s: [] for s in splits_present(root)}
    for b in batches:
        for split in splits:
            folder = root / split / b.name
            if not folder.is_dir():
                raise DataError(f"{folder} is missing; {split}/ needs the same batch folders as train/")
            rows = read_label_csv(folder / "label.csv")
            splits[split].append(([folder / f for f, _ in rows], [lab for _, lab in rows]))
    n_classes = 1 + max((max(labels, default=-1) for _, labels in splits["train"]), default=-1)
    names = [str(c) for c in range(n_classes)]
    return assemble(cfg, splits, names, [f"task {i}: {b.name}" for i, b in enumerate(batches)], "openloris-round1")


def _load_folders(cfg: DataConfig, root: Path) -> Stream:
    check_root(root, "openloris-folders")
    tasks = numbered(root / "train", "task")
    if not tasks:
        raise DataError(f"{root / 'train'} has no task<k> folders; expected train/task1/<class>/..., train/task2/...")
    present = splits_present(root)
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
                files = image_files(c)
                paths += files
                labels += [index[c.name]] * len(files)
            if not paths:
                raise DataError(f"{folder} has no images in class folders; expected {folder}/<class>/*.jpg")
            splits[split].append((paths, labels))
    return assemble(cfg, splits, class_names, [f"task {i}: {t.name}" for i, t in enumerate(tasks)], "openloris-folders")


def _instance_images(folder: Path) -> tuple[list[Path], list[str]]:
    """Images of ``<folder>/<instance>/*`` and their instance names."""
    paths, names = [], []
    for inst in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = image_files(inst)
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
    segs = numbered(folder, "segment")
    if not segs:
        raise DataError(f"{folder} has no segment<k> folders; expected {folder}/segment1/<instance>/*.jpg, ...")
    return segs


def _benchmark1_tasks(root: Path, factor: str) -> list[tuple[str, list[str], dict[str, str]]]:
    """(name, [factor/segment<k>], factors) of each task: one factor's segments in numeric order."""
    return [(f"task {k}: {factor} {seg.name}", [f"{factor}/{seg.name}"], {factor: f"level {k // SEGMENTS_PER_LEVEL + 1}"})
            for k, seg in enumerate(_segments(root, factor, "openloris-benchmark1"))]


def _benchmark2_tasks(root: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    """(name, [factor/segment<k>...], factors) of each task: every factor's levels, 3 segments each, in sequence."""
    tasks = []
    for factor in BENCHMARK2_FACTORS:
        segs = _segments(root, factor, "openloris-benchmark2")
        for lv in range(0, len(segs), SEGMENTS_PER_LEVEL):
            group = segs[lv:lv + SEGMENTS_PER_LEVEL]
            level = lv // SEGMENTS_PER_LEVEL + 1
            tasks.append((f"task {len(tasks)}: {factor} level {level} ({group[0].name}-{group[-1].name})",
                          [f"{factor}/{s.name}" for s in group], {factor: f"level {level}"}))
    return tasks


def _load_factors(cfg: DataConfig, root: Path, tasks: list[tuple[str, list[str], dict[str, str]]]) -> Stream:
    """openloris-benchmark1 / -benchmark2: the dataset's current layout (module docstring)."""
    source = cfg.source
    check_root(root, source)
    present = splits_present(root)
    found: dict[str, list[tuple[list[Path], list[str]]]] = {s: [] for s in present}
    for _, rels, _ in tasks:
        for split in present:
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
    splits = {s: [(p, [index[n] for n in names]) for p, names in found[s]] for s in present}
    return assemble(cfg, splits, class_names, [t[0] for t in tasks], source, [t[2] for t in tasks])


# ------------------------------------------------------------------ the sources
@register
class Round1(Source):
    """OpenLORIS-Object, IROS 2019 challenge round 1: batch<k>/label.csv per split."""

    name = "openloris-round1"
    root_hint = "train/ and test/ (train/batch1/label.csv, ...)"

    def count_tasks(self) -> int:
        check_root(self.root, self.name)
        return len(numbered(self.root / "train", "batch"))

    def load(self) -> Stream:
        return _load_round1(self.data, self.root)


@register
class Folders(Source):
    """OpenLORIS-Object, final round: ``train/task<k>/<class>/*.jpg`` per split."""

    name = "openloris-folders"
    root_hint = "train/ and test/ (train/task1/<class>/*.jpg, ...)"

    def count_tasks(self) -> int:
        check_root(self.root, self.name)
        return len(numbered(self.root / "train", "task"))

    def load(self) -> Stream:
        return _load_folders(self.data, self.root)


@dataclass(frozen=True)
class Benchmark1Params:
    factor: str | None = None   # the factor whose segments are the tasks: clutter | illumination | occlusion | pixel
    stream: str | None = None   # benchmark1-<factor>: the generated stream's name for this protocol, read as factor


@register
class Benchmark1(Source):
    """OpenLORIS-Object's first protocol: one factor's 9 segments, one task each."""

    name = "openloris-benchmark1"
    root_hint = "train/ and test/ (train/<factor>/segment1/<instance>/*.jpg, ...)"
    Params = Benchmark1Params

    @classmethod
    def check(cls, data, params):
        factor, stream = params.factor, params.stream
        if factor is None and stream and stream.startswith("benchmark1-"):
            factor = stream[len("benchmark1-"):]  # --stream names the factor
        if factor is None:
            raise ConfigError(f"data.source={cls.name!r} needs data.factor: one of {', '.join(FACTORS)} "
                              f"(e.g. --factor illumination)")
        if factor not in FACTORS:
            raise ConfigError(f"data.factor={factor!r} is not valid; choose one of: {', '.join(FACTORS)}")
        if stream is not None and stream != f"benchmark1-{factor}":
            raise ConfigError(f"data.stream={stream!r} does not match data.source={cls.name!r} "
                              f"(which reads benchmark1-{factor})")
        return replace(params, factor=factor, stream=None)  # the source says it all: one cache key either way

    def count_tasks(self) -> int:
        check_root(self.root, self.name)
        return len(_segments(self.root, self.params.factor, self.name))

    def load(self) -> Stream:
        return _load_factors(self.data, self.root, _benchmark1_tasks(self.root, self.params.factor))


@dataclass(frozen=True)
class Benchmark2Params:
    stream: str | None = None   # benchmark2: the generated stream's name for this protocol (nothing else)


@register
class Benchmark2(Source):
    """OpenLORIS-Object's second protocol: the 12 tasks of all factors, level by level."""

    name = "openloris-benchmark2"
    root_hint = "train/ and test/ (train/<factor>/segment1/<instance>/*.jpg, ...)"
    Params = Benchmark2Params

    @classmethod
    def check(cls, data, params):
        if params.stream not in (None, "benchmark2"):
            raise ConfigError(f"data.stream={params.stream!r} does not match data.source={cls.name!r} "
                              f"(which reads benchmark2)")
        return replace(params, stream=None)

    def count_tasks(self) -> int:
        check_root(self.root, self.name)
        return sum(-(-len(_segments(self.root, f, self.name)) // SEGMENTS_PER_LEVEL) for f in BENCHMARK2_FACTORS)

    def load(self) -> Stream:
        return _load_factors(self.data, self.root, _benchmark2_tasks(self.root))
