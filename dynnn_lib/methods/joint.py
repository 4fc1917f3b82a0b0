"""Joint (cumulative) training: at task t the network continues training on the union of tasks 0..t, as
Avalanche's Cumulative strategy does. Not incremental: it is the upper bound the others are measured against."""
import torch
import torch.nn.functional as F

from dynnn_lib.methods.base import Method, register
from dynnn_lib.methods.training import Concat


@register
class Joint(Method):
    """Joint/cumulative upper bound: trains on every task seen so far (not incremental)."""

    name = "joint"
    uses_past_data = True
    incremental = False

    def train_task(self, ctx):
        tasks = ctx.past_tasks() + [ctx.task]
        data = ctx.samples(Concat([t.train_x for t in tasks]), torch.cat([t.train_y for t in tasks]))
        epochs = ctx.fit(ctx.network(), lambda out, batch: F.cross_entropy(out, batch.y), data,
                         desc=f"task {ctx.t} joint")
        return ctx.log("joint", epochs, extra={"images": len(data)})
