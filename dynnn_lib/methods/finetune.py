"""Finetune: one head, the whole network trained on every task (the paper's baseline)."""
import torch.nn.functional as F

from dynnn_lib.evaluation.outputs import decision_accuracy, measure_before, trunk_features
from dynnn_lib.methods.base import Method, register


@register
class Finetune(Method):
    """One head; the whole network trained on every task with cross-entropy (the baseline)."""

    name = "finetune"

    def train_task(self, ctx):
        # the old model before training, logged (one head: every label-free head rule predicts the same)
        before = measure_before(ctx.model, trunk_features(ctx.model, ctx.task.train_x, ctx.device), ctx.task.train_y,
                                history=ctx.history)
        before.acc = decision_accuracy(ctx.model, ctx.task, ctx.cfg.data, ctx.device, before, history=ctx.history)
        epochs = ctx.fit(ctx.network(), lambda out, batch: F.cross_entropy(out, batch.y), ctx.samples(),
                         desc=f"task {ctx.t} finetune")
        return ctx.log("finetune", epochs, acc_before=before.acc, head_acc=before.head_acc)
