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
# Pick the tasks that get a new head (none = distillation only) or the automatic rule (`auto <`: expand when
# the old model's routed accuracy on a new task is below it), the head to distil from, CE on all or unknown
# samples, the LR trick, the number of seeds and the **head rule** used at test time. The heatmap, the metrics
# and the routing accuracy update from the run cache; changing the head rule re-scores stored runs and never
# trains. A combination never trained before is trained by **Train** (as long as a run of those settings
# takes: `docs/speed.md` has measured times per run); if training fails, the status says why and Train is enabled again.

# %% tags=["parameters"]
n_tasks: int = 9  # tasks of the embedded stream to use
base: dict = {}  # RunConfig overrides, e.g. {"inc_epochs": 4}
runs_dir: str = "../runs"  # run cache shared with the CLI and the other notebooks
interactive: bool = True  # False in batch runs: a static figure instead of a live widget

# %%
from dynnn_lib.workbench.explorer import Explorer

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
