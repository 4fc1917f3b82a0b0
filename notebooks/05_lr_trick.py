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
# # 05 · The LR trick, and the seed's headline table
#
# Hikvision's last ingredient is plain: a **small learning rate on incremental tasks**. Less movement per
# task means less forgetting, at the price of learning each new domain less well. This notebook runs the
# seed's five variants and puts our numbers beside theirs.

# %% tags=["parameters"]
seeds: int = 3  # number of seeds
jobs: int = 2  # parallel processes
lr_trick_lr: float = 0.001  # the small incremental learning rate
base: dict = {}  # RunConfig overrides for every run
runs_dir: str = "../runs"  # run cache shared with the CLI
interactive: bool = True  # progress bars

# %%
from dynnn_lib import study, VARIANTS

variants = {name: {**ov, "lr_trick_lr": lr_trick_lr} if ov.get("lr_trick") else ov for name, ov in VARIANTS.items()}
result = study.compare(variants, base=base, seeds=seeds, jobs=jobs, runs_dir=runs_dir, progress=interactive)
result.record();

# %%
result.table()

# %% tags=["nbval-check-output"]
print(result.summary())

# %%
from dynnn_lib.reproduce import ordering_report
print(ordering_report(result.summaries))

# %%
result.heatmap("DynamicNN (no expand) + LR trick")
