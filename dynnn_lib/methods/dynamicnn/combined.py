"""DynamicNN: a new head on dissimilar tasks (``expand_at`` or ``expand_threshold``), knowledge distillation into
an existing head on similar ones (the paper's method, e.g. "expand@1")."""
from dynnn_lib.methods.base import register
from dynnn_lib.methods.dynamicnn.expand import Expand
from dynnn_lib.methods.dynamicnn.frozen_trunk import shares_tasks


@register
@shares_tasks
class Combined(Expand):
    """Frozen trunk; expands on dissimilar tasks and distils into an existing head on similar ones (DynamicNN)."""

    name = "combined"
    otherwise = "kd"
