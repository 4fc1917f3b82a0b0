"""Learning without Forgetting (Li & Hoiem, 2016): the whole network is trained on the new task with
cross-entropy plus distillation towards the previous model's outputs on the new task's images."""
from dataclasses import dataclass

import torch.nn.functional as F

from dynnn_lib.core.errors import ConfigError
from dynnn_lib.evaluation.outputs import head_logits, trunk_features
from dynnn_lib.methods.base import Method, register
from dynnn_lib.methods.training import kd_loss


@register
class LwF(Method):
    """LwF: whole network, CE + alpha * distillation from the previous model on the new images (no old data)."""

    name = "lwf"

    @dataclass(frozen=True)
    class Params:
        alpha: float = 1.0         # weight of the distillation term (Avalanche: alpha)
        temperature: float = 2.0   # softening; our kd_loss scales by T^2 (Hinton), Avalanche's does not

        def __post_init__(self):
            if not self.alpha >= 0 or not self.temperature > 0:
                raise ConfigError(f"method_params: lwf needs alpha >= 0 and temperature > 0, got {self}")

    def train_task(self, ctx):
        p = self.params
        old = head_logits(ctx.model.heads[0], trunk_features(ctx.model, ctx.task.train_x, ctx.device))

        def loss_fn(out, batch):
            return {"ce": F.cross_entropy(out, batch.y), "kd": p.alpha * kd_loss(out, batch.teacher, p.temperature)}

        return ctx.log("lwf", ctx.fit(ctx.network(), loss_fn, ctx.samples(teacher=old), desc=f"task {ctx.t} lwf"))
