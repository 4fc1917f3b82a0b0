"""The experiments behind each notebook, as data: variant name -> RunConfig overrides.

The notebooks call these (and show them), and the batch planner (:mod:`dynnn_lib.workbench.plan`) collects them together
with the reproduction and the fidelity report, so that ``make all`` trains the union once, two runs at a time.
The head rule is evaluation-only, so variants that differ only in it share one trained run. ``NOTEBOOK_STUDIES`` says
which runs each notebook makes from its parameters: its variants over seeds, or notebook 09's schedule landscape.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from dynnn_lib.core.config import RunConfig, from_dict
from dynnn_lib.experiments.paper import AUTO_NAME, AUTO_OVERRIDES, VARIANTS

Variants = dict[str, dict[str, Any]]


def finetune() -> Variants:
    return {"finetune": {"method": "finetune"}}


def expansion(expand_at: Sequence[int] = (1, 3)) -> Variants:
    """Frozen trunk, a new head at `expand_at`, the newest head fine-tuned elsewhere (no distillation)."""
    return {**finetune(), f"expand@{list(expand_at)}": {"method": "expand", "expand_at": list(expand_at)}}


def distillation(kd_temperature: float = 2.0, kd_weight: float = 1.0) -> Variants:
    """KD on known samples; the KD head choice (best / worst / routed) only exists with two heads or more."""
    kd = {"method": "kd", "kd_temperature": kd_temperature, "kd_weight": kd_weight}
    expand1 = {**kd, "method": "combined", "expand_at": [1]}
    return {**finetune(), "DynamicNN (no expand)": kd,
            "KD from the best head, expand@1": {**expand1, "kd_head": "best"},
            "KD from the worst head, expand@1": {**expand1, "kd_head": "worst"},
            "KD into the routed head, expand@1": {**expand1, "kd_head": "routed"},
            "CE on unknown only": {**kd, "ce_on": "unknown"}}


def combined(expand_at: Sequence[int] = (1,), expand_threshold: float = 0.5) -> Variants:
    """DynamicNN: a fixed expansion schedule vs the automatic rule (expand when the old model's routed accuracy on
    the new task is below `expand_threshold`), distilling into the best or into the routed head."""
    auto = {"method": "combined", "expand_threshold": expand_threshold}
    return {"DynamicNN (no expand)": {"method": "kd"},
            f"DynamicNN (expand@{list(expand_at)})": {"method": "combined", "expand_at": list(expand_at)},
            f"DynamicNN (auto < {expand_threshold})": auto,
            f"DynamicNN (auto < {expand_threshold}, routed KD)": {**auto, "kd_head": "routed"}}


def lr_trick(lr_trick_lr: float = 0.001) -> Variants:
    """The paper's five headline variants (the LR trick ones with the given small learning rate)."""
    return {name: {**ov, "lr_trick_lr": lr_trick_lr} if ov.get("lr_trick") else dict(ov) for name, ov in VARIANTS.items()}


def your_method(distance: float = 0.9) -> Variants:
    """Notebook 07: the method of notebooks/novelty.py (expand when the trunk's statistics say "new domain") beside
    the automatic rule and finetune, both DynamicNN rules distilling into the routed head. Import novelty.py first."""
    return {"finetune": {"method": "finetune"}, AUTO_NAME: dict(AUTO_OVERRIDES),
            "novelty (yours)": {"method": "novelty", "method_params": {"distance": distance, "kd_head": "routed"}}}


NotebookRuns = Callable[[Mapping[str, Any]], list[RunConfig]]


def over_seeds(study: Callable[..., Variants], names: Sequence[str] = ()) -> NotebookRuns:
    """A study as a notebook's runs: each variant on the notebook's `base` for seeds 0..seeds-1 (what
    ``study.compare`` trains), the study called with the notebook's parameters `names`."""
    def runs(values: Mapping[str, Any]) -> list[RunConfig]:
        base = dict(values.get("base") or {})
        return [from_dict({**base, **ov, "seed": s}) for ov in study(**{k: values[k] for k in names}).values()
                for s in range(int(values["seeds"]))]

    return runs


def schedule_landscape(values: Mapping[str, Any]) -> list[RunConfig]:
    """Notebook 09's runs: the landscape its parameters ask for (schedules.plan, as the notebook calls landscape)."""
    from dynnn_lib.experiments import schedules

    base = {**(values.get("base") or {}), "kd_head": values["kd_head"], "lr_trick": values["lr_trick"]}
    return schedules.plan(base, range(values["seeds"]), values["max_heads"] or None, values["threshold"]).configs()


def calibration_check(values: Mapping[str, Any]) -> list[RunConfig]:
    """Notebook 08's runs: the committed fit re-measured (calibrate.evaluate, as the notebook calls it)."""
    from dynnn_lib.experiments import calibrate

    groups = calibrate.evaluation_plan(int(values["seeds"]), base=values.get("base"))[-1]
    return [c for cfgs in groups.values() for c in cfgs]


# notebook -> its runs as a function of its parameters (each one it declares: its default unless given)
NOTEBOOK_STUDIES: dict[str, NotebookRuns] = {
    "01_finetune": over_seeds(finetune),
    "02_expansion": over_seeds(expansion, ("expand_at",)),
    "03_knowledge_distillation": over_seeds(distillation, ("kd_temperature", "kd_weight")),
    "04_combined": over_seeds(combined, ("expand_at", "expand_threshold")),
    "05_lr_trick": over_seeds(lr_trick, ("lr_trick_lr",)),
    "07_your_method": over_seeds(your_method, ("distance",)),
    "08_calibration": calibration_check,
    "09_schedules": schedule_landscape,
}

# notebook -> the files beside it that define what its runs use (a method of your own), imported before they are built
NOTEBOOK_PLUGINS: dict[str, tuple[str, ...]] = {"07_your_method": ("novelty.py",)}
