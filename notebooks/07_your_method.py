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
# # 07 · Your method, beside DynamicNN and finetune
#
# A method is one small class in a file of your own: a `name`, its parameters (a dataclass, validated when a
# configuration is built) and what it does on each task after the first (task 0 trains trunk and first head for
# every method, and is shared between them). Register it with `@register`, import the file, and it runs through the
# same `run(...)`, cache, resume, metrics, notebooks, explorer and reports as the built-in ones.
#
# Here is an idea to try in an afternoon. DynamicNN decides to **expand** when the old model scores badly on the
# new task *before* training, which needs the task's labels. Could the trunk's own statistics decide instead? The
# router already keeps, for every task, the per-channel mean and spread of the frozen trunk's activations. A new
# task whose mean activations sit far (in units of a known domain's spread) from **every** known domain is a new
# domain: give it a new head. Otherwise distil into the head the new task's images are routed to.

# %% tags=["parameters"]
distance: float = 0.9  # expand when the new task is this far (mean |Δμ| / σ over channels) from every known domain
seeds: int = 2  # number of seeds
jobs: int = 2  # parallel processes (each imports the method from its file, novelty.py)
base: dict = {}  # RunConfig overrides for every run
runs_dir: str = "../runs"  # run cache shared with the CLI
interactive: bool = True  # progress bars
head_rule: str = "router"  # router | oracle | mean_prob | max_conf | last

# %% [markdown]
# ## The method: 20 lines in a file
# It lives in `novelty.py`, beside this notebook. It reuses DynamicNN's frozen-trunk step (`FrozenTrunkMethod`:
# measure the old model, then train one head with expansion or distillation) and only replaces the decision,
# `choose`. `ctx` holds the model, the task, the configuration, this method's parameters and what earlier tasks left
# behind (`ctx.history.domains`). Importing the file registers the method under its name, `novelty`.
#
# **Why a file and not a cell.** With `jobs` above 1 the runs train in `jobs` worker processes, and a worker can
# only use code that lives in a file: it imports the module `novelty` by name before it trains. A class defined in
# a notebook cell exists in this kernel alone, so its runs train here, one at a time. The file also lets
# the command line and `make all` use the method: `dynnn run --import notebooks/novelty.py --method novelty` (from
# the repository's root) imports the file, puts its folder on the module path so that the workers import it too,
# and runs the method over seeds like any built-in one. Python imports a file once: after editing `novelty.py`,
# restart the kernel.

# %%
import inspect

from IPython.display import Code

import novelty
from novelty import NoveltyExpand

Code(inspect.getsource(novelty), language="python")

# %% [markdown]
# ## What the cache knows about your method
# Every result is stored under a key derived from what trains it, never from a declaration you must keep up to
# date. For each task after the first, the key of your method holds its name, its class's own code (every class of
# its chain that is not the package's shared code; a class in a file by the file, here `novelty.py`, and its own
# bytecode; a class in a notebook cell by its bytecode, constants and closures) and **all** its parameters. Editing
# `novelty.py` or changing `distance` trains again, and your method never starts from another method's stored tasks:
# it shares task 0 only, which every method trains alike. (Only the exact built-in DynamicNN variants share later
# tasks, by the action their schedules take; a subclass of them is keyed like yours.) `dynnn verify` retrains any
# cached run alone and compares it bit for bit.

# %%
from dynnn_lib import from_dict
from dynnn_lib.engine.executors import stream_length

mine = from_dict({**base, "method": "novelty", "method_params": {"distance": distance, "kd_head": "routed"}})
kd = mine.replace(method="kd", method_params={"kd_head": "routed"})
recipe = NoveltyExpand.task_recipe(mine, 1)
print("task 1's key holds:", sorted(recipe), "with parameters", sorted(recipe["params"]))

# %% tags=["nbval-check-output"]
n_tasks = stream_length(mine)
shared = [t for t, (a, b) in enumerate(zip(mine.prefix_keys(n_tasks), kd.prefix_keys(n_tasks))) if a == b]
print(f"tasks whose stored state novelty shares with kd: {shared}")

# %% [markdown]
# ## Run it beside DynamicNN and finetune
# The same seeds for every method, so each difference is paired. DynamicNN here is the automatic rule (expand when
# the routed accuracy before training is below 0.5, distil into the routed head); the new method distils into
# the routed head too, so the only difference is the signal that decides to expand. The variants are
# `studies.your_method` (in `dynnn_lib/experiments/studies.py`, where `make all` reads them to train these runs
# before it executes the notebooks); a comparison of your own is any such mapping of names to configuration
# overrides, given to `study.compare`.

# %% tags=["nbval-check-output"]
from dynnn_lib.experiments import studies
from dynnn_lib.experiments.paper import AUTO_NAME

variants = studies.your_method(distance)
for name, overrides in variants.items():
    print(f"{name}: {overrides}")

# %%
from dynnn_lib.workbench import study

result = study.compare(variants, base=base, seeds=seeds, jobs=jobs, runs_dir=runs_dir, progress=interactive,
                       head_rule=head_rule)
result.record();

# %% tags=["nbval-check-output"]
print(result.heads("novelty (yours)"))

# %% [markdown]
# Where did each rule expand? Each line below is counted from these runs, over the seeds.

# %% tags=["nbval-check-output"]
print(result.expansions("novelty (yours)"))
print(result.expansions(AUTO_NAME))
print(result.heads(AUTO_NAME))

# %%
result.table()

# %%
result.heatmap("novelty (yours)")

# %%
result.training("novelty (yours)")

# %% [markdown]
# ## Is it better? A paired interval, not a difference of means
# `result.paired` puts each difference with its 95 % interval over the same seeds (held / not held /
# inconclusive). With two seeds (one degree of freedom: t = 12.7) most differences between the two DynamicNN rules
# are inside the noise; raise `seeds` to decide them.

# %%
print(result.paired("novelty (yours)", [AUTO_NAME, "finetune"]))

# %% [markdown]
# ## Beyond this notebook
# * **From the command line** (in the repository's root):
#   `dynnn run --import notebooks/novelty.py --method novelty --param distance=0.9 --kd-head routed`; the same
#   `--import` works for `dynnn baselines --with novelty` and `dynnn sweep`.
# * **From a package**: declare it under the `dynnn.methods` entry point group in your `pyproject.toml`
#   (`[project.entry-points."dynnn.methods"]` then `novelty = "mymethods.novelty:NoveltyExpand"`); every workbench that
#   has your package installed lists it (`dynnn methods`), including the explorer's method menu.
# * **Keeping state across tasks** (a memory, a Fisher matrix): store it in `state_dict()` / `load_state_dict()`,
#   so an interrupted run resumes exactly; `end_task(ctx)` runs after every task, task 0 included
#   (see `dynnn_lib/methods/ewc.py` and `replay.py`).
# * **Using earlier tasks' data** breaks the paper's rules: declare `uses_past_data = True` (results and tables
#   then say so) and read them with `ctx.past_tasks()` (see `joint.py`).
