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
# # 00 · The data: one set of objects, nine domains
#
# OpenLORIS-Object was recorded by robots in offices and homes under four controlled **factors** —
# illumination, occlusion, object pixel size and clutter — each at three levels. The challenge's round 1
# delivered 9 batches, each drawn from a few factor levels, to be learnt one after another.
#
# The embedded benchmark generates the same structure: every class is an object with its own silhouette,
# colours and texture, rendered under chosen factor levels. Nothing is downloaded.

# %% tags=["parameters"]
n_classes: int = 10  # object classes
train_per_class: int = 100  # training images per class and task
data_seed: int = 0  # the benchmark's seed
per_row: int = 10  # images per row in the grids

# %% tags=["nbval-check-output"]
import torch
from dynnn_lib import DataConfig
from dynnn_lib.data import load_stream, synthetic
from dynnn_lib import viz

stream = load_stream(DataConfig(n_classes=n_classes, train_per_class=train_per_class, data_seed=data_seed))
for task in stream.tasks:
    print(task.name)

# %% [markdown]
# ## One row per task
# Each row shows one image of every class (in class order) from that task's training set.

# %%
rows = []
for task in stream.tasks:
    first = [int((task.train_y == c).nonzero()[0]) for c in range(min(per_row, stream.n_classes))]
    rows.append(task.train_x[first])
viz.image_grid(torch.cat(rows), nrow=len(rows[0]), title="tasks 0-8 (rows) x classes (columns)")

# %% [markdown]
# ## One factor at a time
# The same objects under each level of one factor, the other factors at their neutral level.

# %%
protos = synthetic.class_prototypes(n_classes, data_seed)
labels = torch.arange(min(per_row, n_classes))
grids = []
for factor, levels in synthetic.LEVELS.items():
    for level in levels:
        grids.append(synthetic.render({factor: level}, labels, protos, 32, torch.Generator().manual_seed(1)))
viz.image_grid(torch.cat(grids), nrow=len(labels),
               title="rows: " + " | ".join(f"{f}: {', '.join(l)}" for f, l in synthetic.LEVELS.items()))

# %% [markdown]
# ## Class balance
# Every task holds the same number of images per class, so accuracy is not skewed by frequent classes.

# %%
import plotly.graph_objects as go
counts = [torch.bincount(t.train_y, minlength=stream.n_classes).tolist() for t in stream.tasks]
go.Figure([go.Bar(name=f"task {i}", x=stream.class_names, y=c) for i, c in enumerate(counts)]).update_layout(
    barmode="group", title="training images per class and task", height=350)
