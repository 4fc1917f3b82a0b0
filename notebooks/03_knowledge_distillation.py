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
# Which head to distil is a switch: the paper's text says the **best** head, its table says the **worst**;
# we add **routed**: the head the router sends most of the new task's images to (its nearest known domain).
# The choice only exists once the network has two heads or more, so they are compared with an expansion
# at task 1 (with one head, every choice is the same head and the runs are identical).

# %% tags=["parameters"]
seeds: int = 2  # number of seeds
jobs: int = 2  # parallel processes
kd_temperature: float = 2.0  # softening temperature T
kd_weight: float = 1.0  # lambda
base: dict = {}  # RunConfig overrides for every run
runs_dir: str = "../runs"  # run cache shared with the CLI
interactive: bool = True  # progress bars
head_rule: str = "router"  # router | oracle | mean_prob | max_conf | last

# %%
from dynnn_lib.experiments import studies
from dynnn_lib.workbench import study

variants = studies.distillation(kd_temperature, kd_weight)
result = study.compare(variants, base=base, seeds=seeds, jobs=jobs, runs_dir=runs_dir, progress=interactive,
                       head_rule=head_rule)
result.record();

# %%
result.heatmap("DynamicNN (no expand)")

# %%
result.curves("DynamicNN (no expand)")

# %% [markdown]
# ## What each task's training did
# The loss per epoch split into cross-entropy and the distillation term, the learning rate (right axis), and at
# each task boundary the action and the share of "known" samples (those the old model already got right: the
# only ones distillation acts on).

# %%
result.training("DynamicNN (no expand)")

# %%
result.table()

# %% [markdown]
# ## Does distilling overwrite a head's old domain?
# Knowledge distillation only constrains the head on the *new* task's known samples; nothing holds it to its
# old domain. For each KD step, the accuracy (task known, oracle scoring) on the tasks that head was already
# responsible for, just before and just after:

# %%
print(result.overwrite("KD from the best head, expand@1"))

# %% [markdown]
# The same numbers as text, to copy into a paper or a lab notebook:

# %% tags=["nbval-check-output"]
print(result.summary())
