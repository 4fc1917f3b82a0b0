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
# # 01 · The finetune baseline: how much does a network forget?
#
# The simplest incremental learner trains the whole network, trunk and one head, on each task in turn.
# Every task has the same classes but a different *domain* (illumination, occlusion, object size, clutter).
# The accuracy matrix shows what that costs: row *i* is the network after task *i*, column *j* is the
# test set of task *j*. Entries left of the diagonal that are lower than the diagonal were **forgotten**.
#
# Which tasks make the network forget most? After the tables, the notebook computes it from these runs (the
# largest drops of accuracy on the earlier tasks) and sets it beside the paper's finetune table when the stream
# has the paper's nine tasks.

# %% tags=["parameters"]
seeds: int = 2  # number of seeds (0..seeds-1)
jobs: int = 2  # parallel processes
base: dict = {}  # RunConfig overrides for every run, e.g. {"data": {"n_tasks": 4}}
runs_dir: str = "../runs"  # run cache shared with the CLI
interactive: bool = True  # progress bars (set False in batch runs)

# %%
from dynnn_lib.experiments import studies
from dynnn_lib.workbench import study

result = study.compare(studies.finetune(), base=base, seeds=seeds, jobs=jobs, runs_dir=runs_dir, progress=interactive)
result.record();

# %% [markdown]
# Hover over a cell to see mean ± std over seeds.

# %%
result.heatmap("finetune")

# %% [markdown]
# Each line is one test task followed through training: dips are forgetting, rises before the line's own
# task are forward transfer.

# %%
result.curves("finetune")

# %% [markdown]
# The loss per epoch over the whole stream, with the learning rate: each new domain starts with a jump in loss.

# %%
result.training("finetune")

# %%
result.table()

# %% [markdown]
# The same numbers as text, to copy into a paper or a lab notebook:

# %% tags=["nbval-check-output"]
print(result.summary())

# %% [markdown]
# Where these runs forgot most, computed from their matrices (the drop after task *i* is the mean accuracy on
# tasks 0..*i*-1 lost while training task *i*; negative means they gained):

# %%
print(result.forgetting("finetune"))

# %% [markdown]
# **BWT** (backward transfer) averages how much each earlier task lost; negative means forgetting.
# **square** is the mean of the whole matrix, the number the paper reports (93.84 for finetune). The ± is the
# sample standard deviation over seeds; whether a difference between two methods is real is judged with paired
# 95 % intervals in `reports/fidelity.md` (written by `make all`).
