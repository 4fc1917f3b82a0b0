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
# # 04 · DynamicNN: expansion + distillation, and deciding automatically
#
# The full method expands on dissimilar domains and distils on similar ones. The seed decided "dissimilar"
# by the old model's accuracy on the new task *before* training on it; in its experiments the expansion
# points were fixed (expand@1, expand@[1, 3]). Both are here: a fixed schedule and the threshold rule.

# %% tags=["parameters"]
seeds: int = 3  # number of seeds
jobs: int = 2  # parallel processes
expand_at: list = [1]  # fixed expansion schedule
expand_threshold: float = 0.3  # automatic rule: expand when accuracy before training is below this
head_combine: str = "mean_prob"  # max_conf | mean_prob | last
base: dict = {}  # RunConfig overrides for every run
runs_dir: str = "../runs"  # run cache shared with the CLI
interactive: bool = True  # progress bars

# %%
from dynnn_lib import study

variants = {"DynamicNN (no expand)": {"method": "kd", "head_combine": head_combine},
            f"DynamicNN (expand@{expand_at})": {"method": "combined", "expand_at": expand_at, "head_combine": head_combine},
            f"DynamicNN (auto < {expand_threshold})": {"method": "combined", "expand_threshold": expand_threshold,
                                                        "head_combine": head_combine}}
result = study.compare(variants, base=base, seeds=seeds, jobs=jobs, runs_dir=runs_dir, progress=interactive)
result.record();

# %%
auto = result[f"DynamicNN (auto < {expand_threshold})"]
print("automatic rule expanded at:", auto.expansions)

# %%
result.heatmap(f"DynamicNN (expand@{expand_at})")

# %%
result.table()
