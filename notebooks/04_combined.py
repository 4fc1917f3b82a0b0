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
# The full method expands on dissimilar domains and distils on similar ones. The paper decided "dissimilar"
# by the old model's accuracy on the new task *before* training on it; in its experiments the expansion
# points were fixed (expand@1, expand@[1, 3]). Both are here: a fixed schedule and the threshold rule.
#
# The old model's prediction is formed by the router (`known_rule`), so the rule measures the head the new
# task's images would actually reach. With a fixed schedule, a dissimilar task that comes after the last
# scheduled expansion is distilled into an existing head and can overwrite that head's own domain; the threshold
# rule can expand there instead. `routed KD` distils a similar task into the head its images route to. Where the
# rule expanded in these runs, and what each distillation cost, is printed below from the runs themselves.

# %% tags=["parameters"]
seeds: int = 2  # number of seeds
jobs: int = 2  # parallel processes
expand_at: list = [1]  # fixed expansion schedule
expand_threshold: float = 0.5  # automatic rule: expand when the routed accuracy before training is below this
head_rule: str = "router"  # router | oracle | mean_prob | max_conf | last (evaluation only)
base: dict = {}  # RunConfig overrides for every run
runs_dir: str = "../runs"  # run cache shared with the CLI
interactive: bool = True  # progress bars

# %%
from dynnn_lib.experiments import studies
from dynnn_lib.workbench import study

variants = studies.combined(expand_at, expand_threshold)
result = study.compare(variants, base=base, seeds=seeds, jobs=jobs, runs_dir=runs_dir, progress=interactive,
                       head_rule=head_rule)
result.record();
auto, fixed = f"DynamicNN (auto < {expand_threshold}, routed KD)", f"DynamicNN (expand@{expand_at})"

# %% [markdown]
# ## Where did the automatic rule expand?
# Counted over seeds, then per seed: the tasks that got a new head, and the head responsible for each task
# afterwards.

# %%
print(result.expansions(auto))
print(result.heads(auto))

# %%
result.heatmap(auto)

# %%
result.heatmap(fixed)

# %% [markdown]
# The training log of the automatic rule: where it expanded (new head, cross-entropy only) and where it
# distilled (CE + KD on the known samples), with the loss parts per epoch.

# %%
result.training(auto)

# %% [markdown]
# ## What distillation cost the heads it went into
# Accuracy (task known) on the tasks a head already owned, just before and after each KD step into it:

# %%
print("fixed schedule:\n" + result.overwrite(fixed))
print("\nautomatic rule:\n" + result.overwrite(auto))

# %% [markdown]
# ## Routing and the head rules

# %%
result.routing(auto)

# %% tags=["nbval-check-output"]
print(result.rules(auto))

# %%
result.table()

# %% tags=["nbval-check-output"]
print(result.summary())
