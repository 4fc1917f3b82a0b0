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
from dynnn_lib import DataConfig
from dynnn_lib.reports import figures as viz
from dynnn_lib.data import load_stream

stream = load_stream(DataConfig(n_classes=n_classes, train_per_class=train_per_class, data_seed=data_seed))
for task in stream.tasks:
    print(task.name)

# %% [markdown]
# ## One row per task
# Each row shows one image of every class (in class order) from that task's training set.

# %%
viz.task_samples(stream, per_row)

# %% [markdown]
# ## One factor at a time
# The same objects under each level of one factor, the other factors at their neutral level.

# %%
viz.factor_levels(n_classes, data_seed, per_row)

# %% [markdown]
# ## Class balance
# Every task holds the same number of images per class, so accuracy is not skewed by frequent classes.

# %%
viz.class_balance(stream)
