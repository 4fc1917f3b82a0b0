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
# # 05 · The LR trick, and the paper's headline table
#
# Hikvision's last ingredient is plain: a **small learning rate on incremental tasks**. The idea: less
# movement per task should mean less forgetting, at the price of learning each new domain less well. This
# notebook runs the paper's five variants, puts our numbers beside theirs, and prints whether the trick reduced
# forgetting on these runs. Whether a difference is real is judged with paired 95 % intervals over seeds (and,
# in `reports/fidelity.md`, which `make all` writes, over benchmark instances).

# %% tags=["parameters"]
seeds: int = 2  # number of seeds
jobs: int = 2  # parallel processes
lr_trick_lr: float = 0.001  # the small incremental learning rate
base: dict = {}  # RunConfig overrides for every run
runs_dir: str = "../runs"  # run cache shared with the CLI
interactive: bool = True  # progress bars
head_rule: str = "router"  # router | oracle | mean_prob | max_conf | last

# %%
from dynnn_lib.experiments import studies
from dynnn_lib.workbench import study

variants = studies.lr_trick(lr_trick_lr)
result = study.compare(variants, base=base, seeds=seeds, jobs=jobs, runs_dir=runs_dir, progress=interactive,
                       head_rule=head_rule)
result.record();

# %%
result.table()

# %% tags=["nbval-check-output"]
print(result.summary())

# %%
from dynnn_lib.experiments.reproduce import ordering_report
print(ordering_report(result.summaries))

# %% [markdown]
# ## Did the LR trick reduce forgetting here?
# The trick minus no trick, paired by seed: BWT (higher = less forgetting) and square. One seed never decides
# (its interval is unbounded).

# %%
for without in ("DynamicNN (no expand)", "DynamicNN (expand@1)"):
    for metric in ("bwt", "overall"):
        print(result.difference(f"{without} + LR trick", without, metric))

# %%
result.heatmap("DynamicNN (no expand) + LR trick")
