"""DynamicNN without expansion: trunk frozen after task 0, every later task trains one head (best, worst or
routed: ``kd_head``) with cross-entropy plus knowledge distillation from its frozen copy on the known samples."""
from dynnn_lib.methods.base import register
from dynnn_lib.methods.dynamicnn.frozen_trunk import FrozenTrunkMethod, shares_tasks


@register
@shares_tasks
class KD(FrozenTrunkMethod):
    """Frozen trunk; never expands; each task distils into one existing head (DynamicNN, no expand)."""

    name = "kd"
    otherwise = "kd"
