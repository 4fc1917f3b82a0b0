"""Finetune: one head, the whole network trained on every task (the paper's baseline)."""
import torch.nn.functional as F

from ..evaluation import trunk_features
from .base import Method, register
from .dynamicnn import decision_accuracy, measure_before


@register
class Finetune(Method):
    """One head; the whole network trained on every task with cross-entropy (the baseline)."""

    name = "finetune"
    config_fields = ("known_rule",)  # only for the logged accuracy before training

    def train_task(self, ctx):
        y = ctx.y
        before = measure_before(ctx.model, trunk_features(ctx.model, ctx.task.train_x, ctx.device), ctx.task.train_y,
                                ctx.cfg.known_rule, ctx.history)
        before.acc = decision_accuracy(ctx.model, ctx.task, ctx.cfg, ctx.device, before, ctx.history)
        epochs = ctx.fit(ctx.network(), lambda out, idx: F.cross_entropy(out, y[idx]), ctx.task.train_x,
                         desc=f"task {ctx.t} finetune")
        return ctx.log("finetune", epochs, acc_before=before.acc, head_acc=before.head_acc)
