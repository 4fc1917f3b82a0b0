"""Shared trunk + a list of heads, GroupNorm throughout.

A *head* is the last conv stage plus the classifier: a linear-only head would leave almost no
plasticity once the trunk is frozen after task 0 (the sources do not say which layers a head has).
At test time the task identity is unknown: which head answers is a *head rule* applied to stored outputs
(:mod:`dynnn_lib.routing`, :mod:`dynnn_lib.evaluation`); ``forward`` averages the heads' probabilities.

Weights and activations are kept ``channels_last``: on the CPU that made a training step of the default
network 1.3x (full) to 1.4x (head) faster than NCHW (benchmarks/speed.py).
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import RunConfig


def _gn(channels: int, groups: int) -> nn.GroupNorm:
    g = min(groups, channels)
    while channels % g:
        g -= 1
    return nn.GroupNorm(g, channels)


def _block(cin: int, cout: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), _gn(cout, groups), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2))


class _Normalize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 0.5) / 0.25


def build_trunk_and_head(cfg: RunConfig, n_classes: int) -> tuple[nn.Module, nn.Module]:
    groups = cfg.gn_groups
    if cfg.backbone == "small":  # ~8 M multiply-adds per 32x32 image: seconds per task on a laptop CPU
        trunk = nn.Sequential(_Normalize(), _block(3, 32, groups))
        head = nn.Sequential(_block(32, 64, groups), _block(64, 64, groups), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(64, n_classes))
        return trunk, head
    from torchvision.models import resnet18  # ResNet-18 with GroupNorm; head = layer4 + classifier
    net = resnet18(weights=None, num_classes=n_classes, norm_layer=lambda c: _gn(c, groups))
    trunk = nn.Sequential(_Normalize(), net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)
    head = nn.Sequential(net.layer4, nn.AdaptiveAvgPool2d(1), nn.Flatten(), net.fc)
    return trunk, head


class DynamicNet(nn.Module):
    def __init__(self, cfg: RunConfig, n_classes: int):
        super().__init__()
        trunk, head = build_trunk_and_head(cfg, n_classes)
        self.trunk = trunk
        self.heads = nn.ModuleList([head])
        self.to(memory_format=torch.channels_last)

    def add_head(self, init_from: int | None) -> int:
        """Append a head: a copy of head `init_from`, or freshly initialised when None. Returns its index."""
        head = copy.deepcopy(self.heads[0 if init_from is None else init_from])
        if init_from is None:
            for m in head.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
        for p in head.parameters():
            p.requires_grad_(True)
        self.heads.append(head)
        return len(self.heads) - 1

    def head_logits(self, features: torch.Tensor) -> torch.Tensor:
        """(n_heads, N, C) logits of every head on trunk features."""
        return torch.stack([h(features) for h in self.heads])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C) class probabilities, averaged over the heads (the evaluation applies a head rule instead)."""
        return self.head_logits(self.trunk(x.contiguous(memory_format=torch.channels_last))).softmax(-1).mean(0)

    def load_saved(self, state: dict) -> None:
        """Load a saved {"n_heads", "model"} state (checkpoint or model.pt): grow to its heads, then load."""
        for _ in range(state["n_heads"] - len(self.heads)):
            self.add_head(0)
        self.load_state_dict(state["model"])

    def set_trunk_trainable(self, trainable: bool) -> None:
        for p in self.trunk.parameters():
            p.requires_grad_(trainable)


def build_model(cfg: RunConfig, n_classes: int) -> DynamicNet:
    """A DynamicNet for `cfg`, initialised from the cached pretrained convs when cfg.pretrained."""
    from .pretrain import pretrained_state

    state = pretrained_state(cfg, lambda n: DynamicNet(cfg, n))  # may train (and seed) on a cache miss
    torch.manual_seed(cfg.seed)  # so the fresh classifier is the same whether the weights were cached or not
    model = DynamicNet(cfg, n_classes)
    if state is not None:
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert not unexpected, unexpected
    return model


def model_size_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())
