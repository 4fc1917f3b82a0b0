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
# # 06 · Explorer: where should the network expand?
#
# Pick the tasks that get a new head (none = distillation only), the head to distil from, the LR trick and
# the number of seeds. The heatmap and the metrics update from the run cache; a combination never trained
# before is trained by **Train** (a few seconds per task and seed with the default settings).

# %% tags=["parameters"]
n_tasks: int = 9  # tasks of the embedded stream to use
base: dict = {}  # RunConfig overrides, e.g. {"inc_epochs": 4}
runs_dir: str = "../runs"  # run cache shared with the CLI and the other notebooks
interactive: bool = True  # False in batch runs: a static figure instead of a live widget

# %%
from dynnn_lib.explorer import Explorer

explorer = Explorer(base=base, n_tasks=n_tasks, runs_dir=runs_dir, live=interactive)
explorer.show()

# %% [markdown]
# Without a browser (papermill, CI) the same object is driven from code:

# %% tags=["nbval-check-output"]
explorer.expand.value = (1,)
if not explorer.refresh():
    explorer.train()
print(explorer.status.value)
explorer.fig if not interactive else None
