"""Streams as data (data/streams.py) and the generator's knobs (data/synthetic.Knobs)."""
import dataclasses
import sys
from pathlib import Path

import pytest
import torch
import yaml

from dynnn_lib import ConfigError, from_dict
from dynnn_lib.core.config import DataConfig
from dynnn_lib.data import load_stream
from dynnn_lib.core import streams
from dynnn_lib.core.streams import PRESETS, Knobs, load_spec, make_knobs

SMALL = {"n_classes": 3, "train_per_class": 4, "test_per_class": 2}


def _frozen_generator():
    """tests/data/synthetic_v1.py: the generator before streams and knobs were data, loaded as a module."""
    src = (Path(__file__).parent / "data" / "synthetic_v1.py").read_text()
    src = src.replace("from ..errors import ConfigError", "from dynnn_lib.core.errors import ConfigError")
    mod = type(sys)("synthetic_v1")
    exec(compile(src, "synthetic_v1.py", "exec"), mod.__dict__)
    return mod


def test_round1_is_generated_bit_for_bit_as_before(tmp_path):
    """Same process, same CPU: the default knobs and the round1 preset give exactly the old generator's images."""
    old = _frozen_generator()
    stream = load_stream(DataConfig(cache_dir=str(tmp_path), stream="round1", **SMALL))
    assert len(stream) == len(old.ROUND1_STREAM) == 9
    for t, factors in enumerate(old.ROUND1_STREAM):
        tx, ty = old.generate_task(factors, 3, 4, 32, 0, salt=2 * t)
        vx, vy = old.generate_task(factors, 3, 2, 32, 0, salt=2 * t + 1)
        task = stream.tasks[t]
        assert torch.equal(task.train_x, tx) and torch.equal(task.train_y, ty), t
        assert torch.equal(task.test_x, vx) and torch.equal(task.test_y, vy), t
        assert task.name == f"task {t}: " + old.describe(factors)


def test_presets_follow_the_datasets_protocols():
    assert set(PRESETS) == {"round1-calibrated", "round1", "round1-mixture", "round1-calibrated-mixture", "benchmark2",
                            *(f"benchmark1-{f}" for f in ("clutter", "illumination", "occlusion", "pixel"))}
    b1 = load_spec("benchmark1-occlusion")
    assert len(b1) == 9
    assert [dict(t.factors)["occlusion"] for t in b1.tasks] == ["0%"] * 3 + ["25%"] * 3 + ["50%"] * 3
    assert [t.segment for t in b1.tasks] == [1, 2, 3] * 3          # the segments of a level differ
    b2 = load_spec("benchmark2")
    assert len(b2) == 12
    assert [next(iter(t.factors)) for t in b2.tasks] == (["illumination"] * 3 + ["occlusion"] * 3 + ["pixel"] * 3
                                                          + ["clutter"] * 3)


def test_segments_change_viewpoints_and_backgrounds_not_the_classes(tmp_path):
    stream = load_stream(DataConfig(cache_dir=str(tmp_path), stream="benchmark1-illumination", **SMALL))
    a, b = stream.tasks[0], stream.tasks[1]          # strong light, segments 1 and 2
    assert a.factors == b.factors and not torch.equal(a.train_x, b.train_x)
    assert sorted(a.train_y.tolist()) == sorted(b.train_y.tolist())


def test_a_yaml_stream_of_ones_own_runs_and_keys_differ_by_stream(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"name": "mine", "tasks": [{"name": "bright", "illumination": "strong"},
                                                              {"illumination": "weak", "segment": 1}]}))
    stream = load_stream(DataConfig(cache_dir=str(tmp_path), stream=str(path), **SMALL))
    assert stream.task_names == ["bright", "task 1: illumination weak"] and stream.tasks[1].factors["illumination"] == "weak"
    keys = {from_dict({"data": {"stream": s, **SMALL}}).key() for s in ("round1", "benchmark2", str(path))}
    assert len(keys) == 3


@pytest.mark.parametrize("body, message", [
    ({"tasks": [{"illumination": "weak"}]}, "at least 2 tasks"),
    ({"tasks": [{"illumination": "weak"}, {"ilumination": "weak"}]}, "task 1: unknown field 'ilumination'"),
    ({"tasks": [{"illumination": "dim"}, {}]}, "task 0: illumination='dim' is not a level"),
    ({"tasks": [{}, {"segment": -1}]}, "task 1: segment=-1 must be an integer >= 0"),
    ({"tasks": [{}, {}], "classes": 3}, "unknown field 'classes'"),
])
def test_a_bad_stream_file_is_one_line_naming_the_task_and_field(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as e:
        DataConfig(stream=str(path))
    assert "\n" not in str(e.value)


def test_stream_names_are_checked_and_match_the_real_protocols():
    with pytest.raises(ConfigError, match="neither a preset"):
        DataConfig(stream="round2")
    real = DataConfig(source="openloris-benchmark1", root="/data", stream="benchmark1-pixel")
    assert real.factor == "pixel" and real.stream is None       # the same run as --factor pixel: one key
    assert real == DataConfig(source="openloris-benchmark1", root="/data", factor="pixel")
    with pytest.raises(ConfigError, match="does not match data.source='openloris-benchmark2'"):
        DataConfig(source="openloris-benchmark2", root="/data", stream="round1")
    with pytest.raises(ConfigError, match="data.generator only applies"):
        DataConfig(source="openloris-benchmark2", root="/data", generator={"weak_gain": 0.2})


def test_knobs_are_typed_and_change_what_they_name(tmp_path):
    cfg = DataConfig(cache_dir=str(tmp_path), stream="round1", generator={"weak_gain": 0.15}, **SMALL)
    assert cfg.knobs().weak_gain == 0.15 and cfg.knobs().strong_gain == 1.3   # the others keep their defaults
    assert len(dataclasses.fields(Knobs)) <= 15
    base = load_stream(DataConfig(cache_dir=str(tmp_path), stream="round1", **SMALL))
    dim = load_stream(cfg)
    for t, task in enumerate(base.tasks):  # only weak-light tasks (3 and 8 of round 1) change
        assert torch.equal(task.train_x, dim.tasks[t].train_x) == (task.factors["illumination"] != "weak"), t
    assert dim.tasks[3].train_x.float().mean() < base.tasks[3].train_x.float().mean()
    assert from_dict({"data": cfg.__dict__ | {"cache_dir": None}}).key() != from_dict({"data": {**SMALL, "stream": "round1"}}).key()
    for bad, message in [({"weak_gain": 0}, "data.generator.weak_gain=0 must be a gain in"),
                         ({"strong_cast": [1, 1]}, "data.generator.strong_cast=(1, 1) must be three RGB gains"),
                         ({"weak_light": 0.2}, "unknown parameter data.generator.weak_light")]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            DataConfig(generator=bad)


def test_photometric_augmentation_of_task_0_is_a_documented_training_knob():
    """base_photometric: 0 leaves task 0's training as it was (flips only); > 0 jitters brightness, contrast and
    colour within [0, 1], changes task 0 (its base key) and nothing about the incremental-only fields."""
    from conftest import tiny
    from dynnn_lib.methods.training import photometric_jitter

    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8)
    y = photometric_jitter(x, 0.4, g)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1 and not torch.equal(x, y)
    ratio = (y.mean(dim=(1, 2, 3)) / x.mean(dim=(1, 2, 3)))
    assert ratio.min() < 0.85 and ratio.max() > 1.15               # brightness moves both ways at strength 0.4
    a, b = tiny(), tiny(base_photometric=0.3)
    assert a.base_key() != b.base_key() and a.replace(inc_epochs=2).base_key() == a.base_key()
    with pytest.raises(ConfigError, match=r"base_photometric=1.5 must be a strength in \[0, 1\)"):
        tiny(base_photometric=1.5)


def test_the_default_stand_in_is_round1_rendered_with_the_fitted_knobs(tmp_path):
    """round1-calibrated (the default) = round1's tasks + the knobs and task-0 augmentation dynnn calibrate fitted;
    round1 stays what it was (default knobs, no augmentation)."""
    assert DataConfig().stream == "round1-calibrated"
    cal, old = load_spec("round1-calibrated"), load_spec("round1")
    CALIBRATED = yaml.safe_load((Path(streams.__file__).parent / "round1_calibrated.yaml").read_text())["generator"]
    assert [t.factors for t in cal.tasks] == [t.factors for t in old.tasks]
    assert [t.name for t in cal.tasks] == [t.name for t in old.tasks]
    assert cal.knobs() == make_knobs(CALIBRATED) != old.knobs() == Knobs()
    assert from_dict({}).task0_photometric() == cal.base_photometric > 0
    assert from_dict({"data": {"stream": "round1"}}).task0_photometric() == 0.0
    assert from_dict({"base_photometric": 0.0}).task0_photometric() == 0.0          # an explicit value wins
    assert from_dict({"data": {"source": "openloris-round1", "root": "/x"}}).task0_photometric() == 0.0
    a = load_stream(DataConfig(cache_dir=str(tmp_path), **SMALL))
    b = load_stream(DataConfig(cache_dir=str(tmp_path), stream="round1", generator=CALIBRATED, **SMALL))
    assert all(torch.equal(x.train_x, y.train_x) for x, y in zip(a.tasks, b.tasks))  # the same pixels
    # switching the stream of a configuration carries no knobs of the old one over
    moved = from_dict({}).replace(data={"stream": "round1"})
    assert moved.data.knobs() == Knobs() and moved.task0_photometric() == 0.0


def test_a_stream_file_carries_knobs_and_augmentation_and_its_content_is_in_the_key(tmp_path):
    path = tmp_path / "mine.yaml"
    body = {"tasks": [{"illumination": "weak"}, {"clutter": "complex"}], "generator": {"weak_gain": 0.5,
            "weak_cast": [1, 1, 1]}, "base_photometric": 0.2}
    path.write_text(yaml.safe_dump(body))
    cfg = from_dict({"data": {"stream": str(path), **SMALL}})
    assert cfg.data.knobs().weak_gain == 0.5 and cfg.data.knobs().weak_cast == (1, 1, 1)
    assert cfg.task0_photometric() == 0.2
    assert from_dict({"data": {"stream": str(path), "generator": {"weak_gain": 0.6}, **SMALL}}).data.knobs().weak_gain == 0.6
    key = cfg.key()
    path.write_text(yaml.safe_dump({**body, "generator": {"weak_gain": 0.4}}))   # same path, other content
    assert from_dict({"data": {"stream": str(path), **SMALL}}).key() != key
    for bad, message in [({**body, "generator": {"weak_light": 1}}, "unknown parameter data.generator.weak_light"),
                         ({**body, "generator": [1]}, "'generator' must be a mapping"),
                         ({**body, "base_photometric": 2}, "base_photometric=2 must be a strength")]:
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(ConfigError, match=message) as e:
            DataConfig(stream=str(path))
        assert str(path) in str(e.value) and "\n" not in str(e.value)
