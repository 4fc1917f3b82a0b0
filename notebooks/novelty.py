"""A method of your own, in a file: DynamicNN that expands when the trunk's statistics say "new domain".

Notebook 07 imports it; from the command line: dynnn run --import notebooks/novelty.py --method novelty
"""
from dataclasses import dataclass

from dynnn_lib.evaluation.routing import domain_features
from dynnn_lib.methods import register
from dynnn_lib.methods.dynamicnn import FrozenTrunkMethod, Params as DynamicNNParams


@register
class NoveltyExpand(FrozenTrunkMethod):
    """DynamicNN that expands when the trunk's statistics say the task is a new domain (no labels needed)."""

    name = "novelty"
    expands = True

    @dataclass(frozen=True)
    class Params(DynamicNNParams):  # DynamicNN's parameters (kd_head, ...) and one of its own
        distance: float = 0.9  # in units of a known domain's per-channel standard deviation

    def choose(self, ctx, before):
        new = domain_features(before.features).double().mean(0).cpu()
        gaps = [float(((new - d.mean).abs() / d.cov.diagonal().sqrt().clamp_min(1e-6)).mean())
                for d in ctx.history.domains]
        return "expand" if min(gaps) > self.params.distance else "kd"
