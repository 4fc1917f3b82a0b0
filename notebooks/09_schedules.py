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
# # 09 · Every expansion schedule: how good were the paper's choices?
#
# The paper expanded by hand, at task 1 (expand@[1]) or at tasks 1 and 3 (expand@[1, 3]); our automatic rule
# expands when the old model does badly on a new task. Neither choice means much until it is set against the
# alternatives: on a 9-task stream DynamicNN can expand at any subset of tasks 1..8, **256 schedules** for one
# KD setting. This notebook trains them all (or those with at most `max_heads` heads) and ranks them.
#
# **Why it is affordable.** Two schedules that agree on tasks 1..k train tasks 0..k identically, so the runs
# are trained as a *tree*: the state after every task is stored once under a key of everything that shaped it
# (`RunConfig.prefix_keys`) and every run starts from its longest stored prefix. On nine tasks that is
# 2 + 4 + ... + 256 = 510 task trainings per seed instead of 256 × 8 = 2,048, with the same results bit for bit
# (tests/test_prefixes.py).

# %% tags=["parameters"]
seeds: int = 2  # seeds per schedule (0..seeds-1); 2 or more for intervals
max_heads: int = 3  # only schedules with at most this many heads (0: all of them, 256 on nine tasks)
kd_head: str = "best"  # the KD setting: the head to distil into (best, worst, routed)
lr_trick: bool = False  # the LR trick on every incremental task
threshold: float = 0.5  # the automatic rule: expand below this accuracy
jobs: int = 2  # parallel processes (the tree trains in waves, one job per shared state)
base: dict = {}  # RunConfig overrides for every run
runs_dir: str = "../runs"  # run cache shared with the CLI (dynnn schedules trains the same runs)
interactive: bool = True  # progress bars (set False in batch runs)

# %% [markdown]
# ## Train the landscape
# The paper's two schedules and the automatic rule run beside it, on the same seeds.

# %%
from dynnn_lib.experiments import schedules as sch
from dynnn_lib.reports.tables import markdown_table
from IPython.display import Markdown

land = sch.landscape({**base, "kd_head": kd_head, "lr_trick": lr_trick}, seeds=range(seeds), max_heads=max_heads or None,
                     runs_dir=runs_dir, jobs=jobs, progress=interactive, auto_threshold=threshold)

# %% tags=["nbval-check-output"]
print(sch.describe(land))

# %% [markdown]
# ## The ranking
# Square accuracy (the mean of the whole matrix, the paper's "square"), mean ± std over seeds. The paper's
# schedules and the automatic rule are listed with their rank among the landscape's schedules.

# %%
Markdown(markdown_table(sch.table(land)))

# %% [markdown]
# ## The best schedule against the paper's choices and the automatic rule
# Paired over the same seeds, 95 % intervals. The best schedule was picked on these very seeds, so the
# intervals flatter it (the winner's curse): a *held* verdict here is a candidate to confirm on fresh seeds.

# %%
Markdown(markdown_table(sch.comparison_rows(land)))

# %% [markdown]
# ## What each head buys
# Each dot is a schedule; a head costs memory (and routing gets harder with more of them). The line is the
# Pareto front: the schedules that no other beats with as few heads or fewer.

# %%
land.figure()

# %% [markdown]
# ## What the tree saved
# Task trainings as a tree against the same runs trained independently (sharing only task 0), and the wall time
# of each wave (a wave trains the states after one task; the last finishes the runs).

# %%
Markdown(sch.cost_line(land))
