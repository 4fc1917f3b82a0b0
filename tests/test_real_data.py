"""Real OpenLORIS-Object as downloaded today: the current layout's two benchmark streams, the validation split for
the expansion decision, the memory-mapped image cache, ImageNet weights from a local file, and every layout end
to end through the CLI (fixtures generated here, 16-20 px)."""
import json

import numpy as np
import pytest
import torch

from dynnn_lib import ConfigError, DataConfig, DataError, from_dict
from dynnn_lib.cli import main
from dynnn_lib.data import load_stream
from dynnn_lib.data import images
from dynnn_lib.data.stream import decision_set
from fixtures import make_current, make_folders, make_round1

TINY = ["--preset", "tiny", "--no-progress", "--jobs", "1", "--seeds", "1", "--set", "data.image_size=16",
        "--set", "data.load_workers=0"]


def cfg(source, root, **kw):
    return DataConfig(source=source, root=str(root), image_size=16, load_workers=0, **kw)


# ------------------------------------------------------------------ the current layout
def test_benchmark1_is_one_factor_one_task_per_segment(tmp_path):
    root = make_current(tmp_path / "lor", factors=("illumination", "clutter"), n_segments=4)
    stream = load_stream(cfg("openloris-benchmark1", root, factor="illumination"))
    assert stream.task_names == [f"task {k}: illumination segment{k + 1}" for k in range(4)]
    assert stream.class_names == ["bottle_01", "cup_02", "knife_03"]
    assert [t.factors for t in stream.tasks] == [{"illumination": f"level {lv}"} for lv in (1, 1, 1, 2)]
    t = stream.tasks[0]
    assert t.train_x.shape == (6, 3, 16, 16) and t.train_y.tolist() == [0, 0, 1, 1, 2, 2]
    assert t.val_x.shape == (6, 3, 16, 16) and len(t.test_y) == 6


def test_benchmark2_is_every_factor_level_by_level_in_sequence(tmp_path):
    root = make_current(tmp_path / "lor", n_segments=6, per_instance=1, splits=("train", "test"))
    stream = load_stream(cfg("openloris-benchmark2", root))
    assert len(stream) == 8  # 4 factors x 2 levels here (3 levels = 12 tasks with the full 9 segments)
    assert [next(iter(t.factors)) for t in stream.tasks] == ["illumination"] * 2 + ["occlusion"] * 2 + \
        ["pixel"] * 2 + ["clutter"] * 2
    assert stream.tasks[1].name == "task 1: illumination level 2 (segment4-segment6)"
    assert len(stream.tasks[0].train_y) == 3 * 3  # three segments merged, 3 instances x 1 image each
    assert stream.tasks[0].val_x is None  # no validation/ folder: the decision reads the training data


@pytest.mark.parametrize("breaker, message", [
    (lambda r: __import__("shutil").rmtree(r / "train/illumination"), "train/illumination is missing"),
    (lambda r: __import__("shutil").rmtree(r / "validation/illumination/segment2"), "segment2 is missing"),
    (lambda r: [p.unlink() for p in (r / "test/illumination/segment1").rglob("*.jpg")],
     "has no images in instance folders"),
    (lambda r: (r / "train/illumination/segment3/cup_02/0.jpg").write_bytes(b"not a jpeg"), "cannot be read"),
    (lambda r: [__import__("shutil").rmtree(p) for p in (r / "train/illumination").iterdir()], "no segment<k> folders"),
])
def test_current_layout_bad_input_gives_one_line_error(tmp_path, breaker, message):
    root = make_current(tmp_path / "lor", factors=("illumination",))
    breaker(root)
    with pytest.raises(DataError) as e:
        load_stream(cfg("openloris-benchmark1", root, factor="illumination"))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unreadable_image_in_a_worker_process_is_still_one_line(tmp_path):
    root = make_current(tmp_path / "lor", factors=("pixel",))
    (root / "train/pixel/segment2/bottle_01/1.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError) as e:
        load_stream(DataConfig(source="openloris-benchmark1", factor="pixel", root=str(root), image_size=16,
                               load_workers=2))
    assert "segment2/bottle_01/1.jpg cannot be read" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("values, message", [
    ({"source": "openloris-benchmark1", "root": "/x"}, "needs data.factor"),
    ({"source": "openloris-benchmark1", "root": "/x", "factor": "weather"}, "data.factor='weather' is not valid"),
    ({"source": "openloris-benchmark2", "root": "/x", "factor": "pixel"}, "only applies to"),
    ({"decide_on": "test"}, "data.decide_on='test' is not valid"),
    ({"load_workers": -1}, "load_workers=-1"),
])
def test_bad_real_data_config(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DataConfig(**values)


# ------------------------------------------------------------------ validation split for the decision
def test_decision_set_reads_validation_when_present(tmp_path):
    round1 = load_stream(cfg("openloris-round1", make_round1(tmp_path / "r1")))
    t = round1.tasks[1]
    assert t.val_x is not None
    x, y = decision_set(t, cfg("openloris-round1", tmp_path / "r1"))
    assert x is t.val_x and y is t.val_y
    x, y = decision_set(t, cfg("openloris-round1", tmp_path / "r1", decide_on="train"))
    assert x is t.train_x
    folders = load_stream(cfg("openloris-folders", make_folders(tmp_path / "f")))  # no validation/: train
    assert decision_set(folders.tasks[1], cfg("openloris-folders", tmp_path / "f"))[0] is folders.tasks[1].train_x


def test_expansion_decision_reads_validation_but_kd_known_mask_reads_train(tmp_path, monkeypatch):
    from dynnn_lib import run
    from dynnn_lib.evaluation import outputs as evaluation
    from dynnn_lib.methods.dynamicnn import frozen_trunk

    seen = []
    real = evaluation.measure_before

    def spy(model, feats, y, *a, **kw):
        seen.append(len(y))
        return real(model, feats, y, *a, **kw)

    monkeypatch.setattr(frozen_trunk, "measure_before", spy)  # the known mask
    monkeypatch.setattr(evaluation, "measure_before", spy)    # the decision (evaluation.decision_accuracy)
    root = make_round1(tmp_path / "r1", per_class=4)  # 12 train images per batch
    for p in (root / "validation/batch2").glob("*"):  # a smaller validation split for batch 2: 3 images
        if p.name != "label.csv":
            p.unlink()
    make_round1(tmp_path / "small", per_class=1)
    for p in (tmp_path / "small/validation/batch2").iterdir():
        p.rename(root / "validation/batch2" / p.name)
    values = {"method": "combined", "expand_threshold": 0.5, "base_epochs": 1, "inc_epochs": 1, "base_milestones": [1],
              "inc_milestones": [1], "pretrained": False,
              "data": {"source": "openloris-round1", "root": str(root), "image_size": 16, "n_tasks": 2,
                       "load_workers": 0}}
    res = run(from_dict(values), tmp_path / "runs")
    assert seen == [12, 3]  # known mask on the 12 training images, the decision on the 3 validation images
    assert res.logs[1]["extra"]["known_fraction"] is not None
    seen.clear()
    run(from_dict({**values, "data": {**values["data"], "decide_on": "train"}}), tmp_path / "runs")
    assert seen == [12]


# ------------------------------------------------------------------ the on-disk cache
def test_images_are_decoded_once_into_a_memory_mapped_cache(tmp_path, monkeypatch):
    root = make_current(tmp_path / "lor", factors=("occlusion",))
    c = cfg("openloris-benchmark1", root, factor="occlusion", cache_dir=str(tmp_path / "cache"))
    first = load_stream(c)
    files = sorted((tmp_path / "cache/images").glob("*.npy"))
    assert len(files) == 3 * 3  # 3 tasks x {train, validation, test}
    assert isinstance(np.load(files[0], mmap_mode="r"), np.memmap)

    def boom(*a, **kw):
        raise AssertionError("decoded again")

    monkeypatch.setattr(images, "_decode", boom)
    again = load_stream(c)  # reads the cache only
    assert torch.equal(first.tasks[2].test_x, again.tasks[2].test_x)
    monkeypatch.undo()
    make_current(tmp_path / "extra", factors=("occlusion",), instances=("zebra_09",), n_segments=1)
    (tmp_path / "extra/train/occlusion/segment1/zebra_09").rename(root / "train/occlusion/segment1/zebra_09")
    changed = load_stream(c)  # a new file in task 0's training split: that array is decoded again
    assert len(changed.tasks[0].train_y) == 8 and len(sorted((tmp_path / "cache/images").glob("*.npy"))) == 10


# ------------------------------------------------------------------ ImageNet weights from a local file
def _write_weights(folder, backbone):
    import torchvision
    from dynnn_lib.model.pretrain import IMAGENET_FILES

    net = {"resnet18": torchvision.models.resnet18, "mobilenetv2": torchvision.models.mobilenet_v2}[backbone]()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / IMAGENET_FILES[backbone])
    return net.state_dict()


def test_imagenet_weights_missing_names_the_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DYNNN_WEIGHTS", str(tmp_path / "w"))
    rc = main(["run", "--runs-dir", str(tmp_path / "runs"), *TINY, "--set", "pretrained=imagenet",
               "--set", "backbone=resnet18"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert f"put it at {tmp_path / 'w' / 'resnet18-f37072fd.pth'}" in err
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in err


@pytest.mark.parametrize("backbone, norm", [("resnet18", "group"), ("mobilenetv2", "frozen_bn")])
def test_imagenet_weights_load_from_the_torch_hub_cache(tmp_path, monkeypatch, backbone, norm):
    from dynnn_lib.model.build import build_model

    monkeypatch.delenv("DYNNN_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    tv = _write_weights(tmp_path / "torch/hub/checkpoints", backbone)
    c = from_dict({"pretrained": "imagenet", "backbone": backbone, "norm": norm})
    state = build_model(c, 5).state_dict()
    conv = "trunk.1.weight" if backbone == "resnet18" else "trunk.1.0.weight"
    assert torch.equal(state[conv], tv["conv1.weight" if backbone == "resnet18" else "features.0.0.weight"])
    if norm == "frozen_bn":  # ImageNet's BatchNorm statistics are kept
        assert torch.equal(state["trunk.1.1.running_var"], tv["features.0.1.running_var"])


def test_imagenet_trunk_trains_and_evaluates_from_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DYNNN_WEIGHTS", str(tmp_path / "w"))
    _write_weights(tmp_path / "w", "resnet18")
    root = make_folders(tmp_path / "lor")
    rc = main(["run", "--runs-dir", str(tmp_path / "runs"), *TINY, "--set", "pretrained=imagenet", "--set",
               "backbone=resnet18", "--set", "norm=frozen_bn", "--data-source", "openloris-folders", "--data-root",
               str(root), "--json", "--method", "kd"])
    assert rc == 0, capsys.readouterr().err
    body = json.loads(capsys.readouterr().out)
    assert len(body["matrix_mean"]) == 3 and body["config"]["pretrained"] == "imagenet"


@pytest.mark.parametrize("values, message", [
    ({"pretrained": "imagenet"}, "needs backbone 'resnet18', 'mobilenetv2' or 'efficientnet_lite0'"),
    ({"pretrained": "yes"}, "choose true, false, 'neutral' or 'imagenet'"),
    ({"norm": "frozen_bn"}, "needs pretrained='imagenet'"),
    ({"norm": "batch"}, "norm='batch' is not valid"),
])
def test_bad_pretrained_config(values, message):
    with pytest.raises(ConfigError) as e:
        from_dict(values)
    assert message in str(e.value)


# ------------------------------------------------------------------ every layout end to end from the CLI
@pytest.mark.parametrize("layout", ["openloris-benchmark1", "openloris-benchmark2", "openloris-round1",
                                    "openloris-folders"])
def test_every_layout_runs_end_to_end_from_the_cli(tmp_path, capsys, layout):
    make = {"openloris-round1": make_round1, "openloris-folders": make_folders}.get(layout, make_current)
    root = make(tmp_path / "lor")
    extra = ["--factor", "clutter"] if layout == "openloris-benchmark1" else []
    rc = main(["run", "--runs-dir", str(tmp_path / "runs"), *TINY, "--data-source", layout, "--data-root", str(root),
               *extra, "--method", "combined", "--expand-threshold", "0.9"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "after\\test" in out.out and "square: " in out.out  # the glossary's name for the overall mean



@pytest.mark.parametrize("layout", ["openloris-benchmark1", "openloris-benchmark2", "openloris-round1",
                                    "openloris-folders"])
def test_every_layout_counts_its_tasks_without_decoding_an_image(tmp_path, monkeypatch, layout):
    """The planner and the sweeps ask a source how many tasks it has: folder names and label files' folders only."""
    from dynnn_lib.data import stream_length

    make = {"openloris-round1": make_round1, "openloris-folders": make_folders}.get(layout, make_current)
    extra = {"factor": "clutter"} if layout == "openloris-benchmark1" else {}
    c = cfg(layout, make(tmp_path / "lor"), cache_dir=str(tmp_path / "cache"), **extra)
    monkeypatch.setattr(images, "_decode", lambda *a: pytest.fail("counting the tasks decoded an image"))
    counted = stream_length(c)
    monkeypatch.undo()
    assert counted == len(load_stream(c)) >= 2
