# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · Your own data: a folder of images, task by task
#
# DynamicNN was built for OpenLORIS-Object, where the tasks are the same objects under new lighting, occlusion,
# size and clutter. Your data may be the same kind of stream: the same classes, seen by day then by night, by one
# camera then another, in one season then the next. If you can put it in **a folder per task, with a folder per
# class inside** (split into `train/` and `test/`, and `validation/` if you have one), the `image-folders` source
# reads it, and every method, sweep, report and the explorer run on it like on the built-in streams:
#
# ```
# my_data/
#   1-daylight/
#     train/  cup/ 001.jpg ...   mug/ ...
#     test/   cup/ ...           mug/ ...
#   2-dusk/
#     train/ ...  test/ ...
# ```
#
# ```bash
# dynnn run --data-source image-folders --data-root my_data --method combined --expand 1
# ```
#
# Images may have any size (they are resized to `data.image_size`) and are decoded once into a cache. Here we
# make such a folder from the generated stand-in (leave `root` empty), or point `root` at yours.

# %% tags=["parameters"]
root: str = ""  # your folder (one folder per task); empty: write an example one from the generated stand-in
image_size: int = 32  # every image is resized to image_size x image_size
seeds: int = 3  # seeds per method (0..seeds-1)
jobs: int = 2  # parallel processes
base: dict = {}  # RunConfig overrides for every run (its data settings: tasks, image size...)
runs_dir: str = "../runs"  # run cache shared with the CLI
interactive: bool = True  # progress bars

# %% [markdown]
# ## A folder of images
# The example: the stand-in's first four tasks, five classes, written as PNG files in the layout above, at a
# different size per task (the source resizes them). It is written once and reused, so its runs stay cached.

# %%
from pathlib import Path

from PIL import Image

from dynnn_lib import DataConfig
from dynnn_lib.data import load_stream
from dynnn_lib.data.stream import default_cache_dir


def write_example(folder: Path) -> Path:
    """The stand-in's first 4 tasks as <folder>/<k>-<domain>/{train,test}/<class>/<i>.png."""
    stream = load_stream(DataConfig(n_tasks=4, n_classes=5, train_per_class=30, test_per_class=10))
    for task in stream.tasks:
        name = f"{task.index + 1}-" + "-".join(v.replace("%", "pct") for v in task.factors.values())
        size = 32 + 8 * task.index  # your images need not match: the source resizes them
        for split, xs, ys in (("train", task.train_x, task.train_y), ("test", task.test_x, task.test_y)):
            for i, (x, y) in enumerate(zip(xs, ys)):
                path = folder / name / split / f"object-{int(y)}" / f"{i:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(x.permute(1, 2, 0).numpy()).resize((size, size)).save(path)
    (folder / ".complete").touch()
    return folder


folder = Path(root) if root else default_cache_dir() / "example-image-folders"
if not root and not (folder / ".complete").exists():
    write_example(folder)

# %% tags=["nbval-check-output"]
for task in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
    counts = {split: sum(1 for _ in (task / split).rglob("*.png")) for split in ("train", "test")}
    print(f"{task.name}/  " + ", ".join(f"{s}: {len(list((task / s).iterdir()))} classes, {n} images"
                                       for s, n in counts.items()))

# %% [markdown]
# ## Read it as a stream
# `data.source = "image-folders"` and `data.root`: the tasks in natural order of their folder names
# (`data.tasks` picks and orders them), the classes from the class folders, shared by every task.

# %% tags=["nbval-check-output"]
data = {**base.get("data", {}), "source": "image-folders", "root": str(folder), "image_size": image_size}
stream = load_stream(DataConfig(**data))
print(f"{len(stream)} tasks, {stream.n_classes} classes: {', '.join(stream.class_names)}")
for task in stream.tasks:
    print(task.name, tuple(task.train_x.shape))

# %%
from dynnn_lib.reports import figures as viz

viz.task_samples(stream, per_row=stream.n_classes)

# %% [markdown]
# ## DynamicNN on it, beside finetune
# The same comparison as on the stand-in, with only the data source changed: finetune, DynamicNN without
# expansion (KD into one head) and DynamicNN expanding when the old model does badly on a new task.

# %%
from dynnn_lib.workbench import study

variants = {"finetune": {"method": "finetune"}, "DynamicNN (no expand)": {"method": "kd"},
            "DynamicNN (auto < 0.5)": {"method": "combined", "expand_threshold": 0.5}}
result = study.compare(variants, base={**base, "data": data}, seeds=seeds, jobs=jobs, runs_dir=runs_dir,
                       progress=interactive)
result.record();

# %%
result.table()

# %%
result.heatmap("DynamicNN (auto < 0.5)")

# %% [markdown]
# ## When the folder is not right
# Every problem is one line naming the folder or file and the fix: an empty task, a missing split, a class
# missing from a task (every task holds every class: the tasks differ by domain), an unreadable image.

# %% tags=["nbval-check-output"]
import shutil
import tempfile

from dynnn_lib import DataError

with tempfile.TemporaryDirectory() as tmp:
    broken = Path(tmp) / "broken"
    shutil.copytree(folder, broken)
    shutil.rmtree(sorted(broken.glob("2-*"))[0] / "train" / "object-0")
    (broken / "0-empty").mkdir()
    for message in ("an empty task", "a class missing from a task"):
        try:
            load_stream(DataConfig(**{**data, "root": str(broken), "cache_dir": tmp}))
        except DataError as e:
            print(message, "->", str(e).replace(str(broken), "<root>"))
        shutil.rmtree(broken / "0-empty", ignore_errors=True)

# %% [markdown]
# ## Beyond this notebook
# * **Another layout** (a CSV of paths, one video per task, an HDF5 file) is a data source of your own: one class
#   with its parameters (a dataclass), the number of tasks (cheap: no decoding) and `load()`, registered with
#   `@register` from `dynnn_lib.data`; then `dynnn run --import mysource --data-source mine`, sweeps and the
#   explorer read it like this one ([docs/your-data.md](../docs/your-data.md) has a complete example).
# * **A sweep** over your data: `base: {data: {source: image-folders, root: /data/my_data}}` in the sweep's YAML
#   (`dynnn sweep`, [docs/sweeps.md](../docs/sweeps.md)).
# * **The explorer** on your data: `Explorer(base={"data": data}, n_tasks=len(stream))` (notebook 06).
