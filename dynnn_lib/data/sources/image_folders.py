"""``image-folders``: your own domain-incremental data, a folder per task and a folder per class inside::

    my_data/                        # data.root
      1-daylight/                   # a task: folders in natural order (2-dusk before 10-night), or data.tasks
        train/
          cup/  001.jpg 002.png ... # a class: images of any size and format PIL reads (resized to image_size)
          mug/  ...
        test/
          cup/ ...  mug/ ...
        validation/                 # optional: when one task has it every task needs it; the expansion decision
          cup/ ...  mug/ ...        # reads it (data.decide_on), the accuracy matrix reads test/
      2-dusk/
        train/ ...  test/ ...

    dynnn run --set data.source=image-folders --set data.root=my_data --method combined --expand 1

Every task holds every class (domain-incremental: the tasks differ by domain, the classes are shared); the classes
are the sorted names of the class folders. Folders and files whose names start with ``.`` and files that are not
images (by extension) are skipped. Counting the tasks reads folder names only. Errors are one line: an empty task,
a class missing from a task's split, an unreadable image.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dynnn_lib.core.errors import ConfigError, DataError
from dynnn_lib.data.images import OPTIONAL_SPLITS, SPLITS, assemble, image_files
from dynnn_lib.data.source import Source, register
from dynnn_lib.data.stream import Stream


@dataclass(frozen=True)
class Params:
    tasks: tuple[str, ...] = ()   # the task folders to read, in this order (empty: every one, in natural order)

    def __post_init__(self) -> None:
        tasks = tuple(self.tasks) if isinstance(self.tasks, (list, tuple)) else self.tasks
        if not isinstance(tasks, tuple) or not all(isinstance(t, str) and t for t in tasks):
            raise ConfigError(f"data.tasks={self.tasks!r} must be a list of task folder names, e.g. [1-daylight, 2-dusk]")
        if len(set(tasks)) != len(tasks):
            raise ConfigError(f"data.tasks={list(tasks)!r} lists a folder twice; give each task once")
        object.__setattr__(self, "tasks", tasks)


def _natural(name: str) -> list:
    """Sort key: digits compare as numbers (task2 before task10)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _folders(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: _natural(p.name))


@register
class ImageFolders(Source):
    """Your own images: ``<root>/<task>/{train,test[,validation]}/<class>/*``, any size (resized)."""

    name = "image-folders"
    Params = Params
    root_hint = "one folder per task, each with train/<class>/ and test/<class>/ folders of images"

    def task_folders(self) -> list[Path]:
        """The task folders in stream order (folder names only: cheap)."""
        if not self.root.is_dir():
            raise DataError(f"data.root {self.root} does not exist; set it to the folder holding one folder per task")
        if self.params.tasks:
            missing = [t for t in self.params.tasks if not (self.root / t).is_dir()]
            if missing:
                raise DataError(f"task folder {self.root / missing[0]} does not exist; fix data.tasks or add the folder")
            return [self.root / t for t in self.params.tasks]
        tasks = _folders(self.root)
        if not tasks:
            raise DataError(f"{self.root} has no task folders; expected {self.root}/<task>/train/<class>/*.jpg")
        return tasks

    def count_tasks(self) -> int:
        return len(self.task_folders())

    def load(self) -> Stream:
        tasks = self.task_folders()
        present = SPLITS + tuple(s for s in OPTIONAL_SPLITS if any((t / s).is_dir() for t in tasks))
        found: dict[str, list[dict[str, list[Path]]]] = {s: [] for s in present}  # split -> per task: class -> files
        for t in tasks:
            if not any((t / s).is_dir() for s in present):
                raise DataError(f"task {t} is empty; it needs {t}/train/<class>/ and {t}/test/<class>/ with images")
            for split in present:
                folder = t / split
                if not folder.is_dir():
                    why = " (another task has one: every task needs it)" if split in OPTIONAL_SPLITS else ""
                    raise DataError(f"{folder} is missing{why}; add it with a folder of images per class")
                classes = {c.name: image_files(c) for c in _folders(folder)}
                if not any(classes.values()):
                    raise DataError(f"task {t} has no {split} images; expected {folder}/<class>/*.jpg")
                found[split].append(classes)
        class_names = sorted({c for split in found.values() for per_task in split for c, files in per_task.items() if files})
        for split, per_task in found.items():
            for t, classes in zip(tasks, per_task):
                for c in class_names:
                    if not classes.get(c):
                        has = next(f"{o.name}/{s}" for s, pt in found.items() for o, k in zip(tasks, pt) if k.get(c))
                        raise DataError(f"class {c!r} is missing from task {t.name!r} ({t / split / c} has no images, "
                                        f"{has} has them): every task holds every class; add its images or remove the "
                                        f"class from every task")
        index = {c: i for i, c in enumerate(class_names)}
        splits = {s: [([f for c in class_names for f in classes[c]],
                       [index[c] for c in class_names for _ in classes[c]]) for classes in found[s]] for s in present}
        return assemble(self.data, splits, class_names, [f"task {i}: {t.name}" for i, t in enumerate(tasks)], self.name)
