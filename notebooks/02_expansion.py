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
# # 02 · Network expansion on dissimilar domains
#
# After task 0 the trunk is **frozen**. When a new task comes from a dissimilar domain, the network grows a
# new **head** (a copy of the best head, then trained on the new task); the old heads stay untouched, so
# what they knew cannot be overwritten. Elsewhere the newest head is simply fine-tuned.
#
# At test time the task is unknown, so the heads' predictions are combined (`head_combine`: mean of
# probabilities by default; the sources do not say how Hikvision did it).

# %% tags=["parameters"]
seeds: int = 3  # number of seeds
jobs: int = 2  # parallel processes
expand_at: list = [1, 3]  # tasks that get a new head (the seed expanded at 1, or at 1 and 3)
base: dict = {}  # RunConfig overrides for every run
runs_dir: str = "../runs"  # run cache shared with the CLI
interactive: bool = True  # progress bars

# %%
from dynnn_lib import study

variants = {"finetune": {"method": "finetune"},
            f"expand@{expand_at}": {"method": "expand", "expand_at": expand_at}}
result = study.compare(variants, base=base, seeds=seeds, jobs=jobs, runs_dir=runs_dir, progress=interactive)
result.record();

# %%
result.heatmap(f"expand@{expand_at}")

# %%
result.curves(f"expand@{expand_at}")

# %%
result.table()

# %% [markdown]
# The same numbers as text, to copy into a paper or a lab notebook:

# %% tags=["nbval-check-output"]
print(result.summary())

# %% [markdown]
# Compare the BWT column with the finetune baseline: freezing the trunk and adding heads trades plasticity
# (the diagonal) for stability (BWT closer to zero).
