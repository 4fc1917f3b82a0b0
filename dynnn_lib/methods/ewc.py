"""Elastic Weight Consolidation (Kirkpatrick et al., 2017) and online EWC (Schwarz et al., 2018): the whole
network is trained with cross-entropy plus lambda * sum_i F_i (theta_i - theta*_i)^2, where F is the diagonal
empirical Fisher (mean over minibatches of squared gradients, as Avalanche computes it) at the end of each task."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dynnn_lib.core.errors import ConfigError
from dynnn_lib.evaluation.outputs import to_float
from dynnn_lib.methods.base import Method, register


@register
class EWC(Method):
    """EWC: whole network, CE + a quadratic penalty weighted by each earlier task's Fisher (no old data)."""

    name = "ewc"

    @dataclass(frozen=True)
    class Params:
        ewc_lambda: float = 100.0   # penalty weight (Avalanche's ewc_lambda; no 1/2 factor, as in Avalanche)
        mode: str = "separate"      # separate: one penalty per earlier task; online: one running Fisher
        decay: float = 1.0          # online mode: F <- decay * F + F_new

        def __post_init__(self):
            if self.mode not in ("separate", "online"):
                raise ConfigError(f"method_params.mode={self.mode!r}: choose separate or online")
            if not self.ewc_lambda >= 0 or not 0 < self.decay <= 1:
                raise ConfigError(f"method_params: ewc needs ewc_lambda >= 0 and decay in (0, 1], got {self}")

    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        self.anchors: list[tuple[dict, dict]] = []  # (Fisher, parameters) per consolidated task (one when online)

    def train_task(self, ctx):
        net = ctx.network()
        named = dict(net.named_parameters())

        def loss_fn(out, batch):
            reg = sum((f[k] * (named[k] - p[k]).pow(2)).sum() for f, p in self.anchors for k in f)
            return {"ce": F.cross_entropy(out, batch.y), "reg": self.params.ewc_lambda * reg}

        return ctx.log("ewc", ctx.fit(net, loss_fn, ctx.samples(), desc=f"task {ctx.t} ewc"))

    def end_task(self, ctx):
        net, x, y, bs = ctx.network(), ctx.task.train_x, ctx.y, ctx.cfg.batch_size
        fisher = {k: torch.zeros_like(p) for k, p in net.named_parameters()}
        batches = range(0, len(x), bs)
        net.eval()
        for i in batches:
            net.zero_grad()
            xb = to_float(x[i:i + bs].to(ctx.device)).contiguous(memory_format=torch.channels_last)
            F.cross_entropy(net(xb), y[i:i + bs]).backward()
            for k, p in net.named_parameters():
                fisher[k] += p.grad.detach() ** 2 / len(batches)
        net.zero_grad(set_to_none=True)
        params = {k: p.detach().clone() for k, p in net.named_parameters()}
        if self.params.mode == "online" and self.anchors:
            old = self.anchors[0][0]
            fisher = {k: self.params.decay * old[k] + fisher[k] for k in fisher}
            self.anchors = []
        self.anchors.append((fisher, params))

    def state_dict(self):
        return {"anchors": self.anchors}

    def load_state_dict(self, state):
        self.anchors = state["anchors"]
