"""Experience replay with a bounded reservoir memory: every training batch of the new task is joined by as many
images drawn from the memory; after each task the memory is updated by reservoir sampling over every image seen
so far (Vitter's algorithm R), so it holds a uniform sample of the stream. It stores earlier tasks' images: it
breaks the paper's "no previous data" rule, and results say so."""
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dynnn_lib.core.errors import ConfigError
from dynnn_lib.methods.base import Method, register
from dynnn_lib.methods.training import Samples, task_seed


class WithMemory(Samples):
    """The task's samples, each batch followed by `k` images drawn from the memory, with their labels; the rows
    from the memory are marked in ``batch.from_memory``."""

    def __init__(self, x, y, mem_x, mem_y, k, gen):
        super().__init__(x, y)
        self.mem_x, self.mem_y, self.k, self.gen = mem_x, mem_y, k, gen

    def take(self, idx):
        drawn = torch.randint(len(self.mem_x), (self.k,), generator=self.gen)
        marks = torch.cat([torch.zeros(len(idx), dtype=torch.bool), torch.ones(self.k, dtype=torch.bool)])
        return (torch.cat([self.x[idx], self.mem_x[drawn]]), torch.cat([self.y[idx], self.mem_y[drawn]]),
                {"from_memory": marks})


@register
class Replay(Method):
    """Experience replay: a reservoir memory of earlier images mixed into every batch (stores old data)."""

    name = "replay"
    uses_past_data = True

    @dataclass(frozen=True)
    class Params:
        memory: int = 200   # images kept (all tasks together)

        def __post_init__(self):
            if isinstance(self.memory, bool) or not isinstance(self.memory, int) or self.memory < 1:
                raise ConfigError(f"method_params.memory={self.memory!r} must be a positive number of images")

    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        self.mem_x, self.mem_y, self.seen = None, None, 0

    def train_task(self, ctx):
        data = WithMemory(ctx.task.train_x, ctx.task.train_y, self.mem_x, self.mem_y, ctx.cfg.batch_size, ctx.gen)
        return ctx.log("replay", ctx.fit(ctx.network(), lambda out, batch: {"ce": F.cross_entropy(out, batch.y)}, data,
                                         desc=f"task {ctx.t} replay"),
                       extra={"memory": len(self.mem_y)})

    def end_task(self, ctx):
        x, y, m = ctx.task.train_x, ctx.task.train_y, self.params.memory
        rng = np.random.default_rng(task_seed(ctx.cfg.seed, ctx.t))
        if self.mem_x is None:
            self.mem_x, self.mem_y = x[:0].clone(), y[:0].clone()
        keep_x, keep_y = list(self.mem_x), list(self.mem_y)
        for i in range(len(x)):
            self.seen += 1
            if len(keep_x) < m:
                keep_x.append(x[i]), keep_y.append(y[i])
            elif (j := int(rng.integers(self.seen))) < m:
                keep_x[j], keep_y[j] = x[i], y[i]
        self.mem_x, self.mem_y = torch.stack(keep_x).clone(), torch.stack(keep_y).clone()

    def state_dict(self):
        return {"mem_x": self.mem_x, "mem_y": self.mem_y, "seen": self.seen}

    def load_state_dict(self, state):
        self.mem_x, self.mem_y, self.seen = state["mem_x"], state["mem_y"], state["seen"]
