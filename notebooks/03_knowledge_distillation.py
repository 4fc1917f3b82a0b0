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
# # 03 · Knowledge distillation on similar domains
#
# Before training on a new task, the old model classifies its training images once. The ones it gets right
# are **known** samples. While a head learns the new task with cross-entropy, a frozen copy of that head
# (the *teacher*) keeps it close to its old answers on the known samples:
#
# $$\mathcal{L} = \mathrm{CE}(y, \text{head}(x)) + \lambda\,T^2\,\mathrm{KL}\big(\sigma(\text{teacher}(x)/T)\,\|\,\sigma(\text{head}(x)/T)\big)_{x\ \text{known}}$$
#
# Which head to distil is a switch: the seed's text says the **best** head, its table says the **worst**.
# The choice only exists once the network has two heads or more, so the two are compared with an expansion
# at task 1 (with one head, best and worst are the same head and the runs are identical).

# %% tags=["parameters"]
seeds: int = 3  # number of seeds
jobs: int = 2  # parallel processes
kd_temperature: float = 2.0  # softening temperature T
kd_weight: float = 1.0  # lambda
base: dict = {}  # RunConfig overrides for every run
runs_dir: str = "../runs"  # run cache shared with the CLI
interactive: bool = True  # progress bars

# %%
from dynnn_lib import study

kd = {"method": "kd", "kd_temperature": kd_temperature, "kd_weight": kd_weight}
variants = {"finetune": {"method": "finetune"},
            "DynamicNN (no expand)": kd,
            "KD from the best head, expand@1": {**kd, "method": "combined", "expand_at": [1], "kd_head": "best"},
            "KD from the worst head, expand@1": {**kd, "method": "combined", "expand_at": [1], "kd_head": "worst"},
            "CE on unknown only": {**kd, "ce_on": "unknown"}}
result = study.compare(variants, base=base, seeds=seeds, jobs=jobs, runs_dir=runs_dir, progress=interactive)
result.record();

# %%
result.heatmap("DynamicNN (no expand)")

# %%
result.curves("DynamicNN (no expand)")

# %%
result.table()

# %% [markdown]
# The same numbers as text, to copy into a paper or a lab notebook:

# %% tags=["nbval-check-output"]
print(result.summary())
