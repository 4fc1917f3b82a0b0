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
# At test time the task is unknown, so something must pick the head: a **head rule** (the sources do not say
# how Hikvision did it). The default, the **router**, sends each image to the head of the domain it most
# resembles, judged from per-channel statistics of the frozen trunk's activations stored for each task (no
# images kept). The **oracle** is told the task, as the round-1 challenge's one-file-per-batch test data allowed.
# Head rules are evaluation-only: every rule below scores the same trained runs.

# %% tags=["parameters"]
seeds: int = 2  # number of seeds
jobs: int = 2  # parallel processes
expand_at: list = [1, 3]  # tasks that get a new head (the paper expanded at 1, or at 1 and 3)
base: dict = {}  # RunConfig overrides for every run
runs_dir: str = "../runs"  # run cache shared with the CLI
interactive: bool = True  # progress bars
head_rule: str = "router"  # router | oracle | mean_prob | max_conf | last

# %%
from dynnn_lib.experiments import studies
from dynnn_lib.workbench import study

variants = studies.expansion(expand_at)
print(variants)
result = study.compare(variants, base=base, seeds=seeds, jobs=jobs, runs_dir=runs_dir, progress=interactive,
                       head_rule=head_rule)
result.record();

# %%
result.heatmap(f"expand@{expand_at}")

# %%
result.curves(f"expand@{expand_at}")

# %%
result.table()

# %% [markdown]
# ## Which head answered? Routing accuracy
# Entry (i, j): after task i, the share of task j's test images the router sent to the head responsible for task j.

# %%
result.routing(f"expand@{expand_at}")

# %% [markdown]
# The same trained runs under every head rule (nothing is retrained). The gap between the oracle and the router
# is what routing costs; the gap between the router and `mean_prob` is what confident wrong heads cost.

# %% tags=["nbval-check-output"]
print(result.rules(f"expand@{expand_at}"))

# %% [markdown]
# The same numbers as text, to copy into a paper or a lab notebook:

# %% tags=["nbval-check-output"]
print(result.summary())

# %% [markdown]
# Freezing the trunk and adding heads is meant to trade plasticity (the diagonal: how well each new task is
# learnt) for stability (BWT closer to zero: less forgetting). Whether it did on these runs, paired by seed
# against the finetune baseline:

# %%
for metric in ("bwt", "diagonal"):
    print(result.difference(f"expand@{expand_at}", "finetune", metric))
