"""Expansion only: trunk frozen after task 0, a new head at each task of ``expand_at`` (or when the old model
scores below ``expand_threshold``); elsewhere the newest head is fine-tuned with cross-entropy, no distillation."""
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.methods.base import register
from dynnn_lib.methods.dynamicnn.frozen_trunk import FrozenTrunkMethod, shares_tasks


@register
@shares_tasks
class Expand(FrozenTrunkMethod):
    """Frozen trunk; a new head on dissimilar tasks, the newest head fine-tuned (CE only) elsewhere."""

    name = "expand"
    expands = True

    @classmethod
    def check(cls, cfg):
        p = cfg.params()
        if not p.expand_at and p.expand_threshold is None:
            raise ConfigError(
                f"method {cls.name!r} needs expansion tasks: pass expand_at (e.g. --expand 1 3) "
                "or expand_threshold (e.g. --expand-threshold 0.8); for no expansion use method 'kd'")

    otherwise = "head_ce"
