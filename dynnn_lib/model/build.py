"""Build the network a configuration describes, with its pretrained weights (the only place that joins the two)."""
from __future__ import annotations

import torch

from dynnn_lib.core.config import RunConfig
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.model.network import DynamicNet
from dynnn_lib.model.pretrain import pretrained_state


def build_model(cfg: RunConfig, n_classes: int) -> DynamicNet:
    """A DynamicNet for `cfg`, initialised from the cached pretrained convs when cfg.pretrained is True, from
    torchvision's ImageNet weights (a local file, pretrain.imagenet_state) when it is "imagenet"."""
    state = pretrained_state(cfg, lambda n: DynamicNet(cfg, n))  # may train (and seed) on a cache miss
    torch.manual_seed(cfg.seed)  # so the fresh classifier is the same whether the weights were cached or not
    model = DynamicNet(cfg, n_classes)
    if state is not None:
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as e:  # shapes differ: a file for another architecture
            raise ConfigError(f"pretrained weights do not fit backbone {cfg.backbone!r} "
                              f"({str(e).splitlines()[-1].strip()}); use the file for this backbone") from None
        assert not unexpected, unexpected
    return model
