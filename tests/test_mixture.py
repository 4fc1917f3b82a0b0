"""Mixture batches (core/streams.py compositions, data/synthetic.generate_mixture): each image from one factor
subdirectory of its task, in exact shares, with the subdirectory's recordings shared by every task that names it."""
import math

import pytest
import torch
import yaml

from dynnn_lib import ConfigError, from_dict
from dynnn_lib.core.config import DataConfig
from dynnn_lib.core.streams import (BASE_LEVELS, LEVELS, MIXTURE_PRESETS, NEUTRAL, PRESETS, load_spec,
                                    subdirectory_factors)
from dynnn_lib.data import load_stream, synthetic

SMALL = {"n_classes": 3, "train_per_class": 4, "test_per_class": 2}


def _brightness(x: torch.Tensor) -> torch.Tensor:
    return x.float().div(255).mean((1, 2, 3))


def _busyness(x: torch.Tensor) -> torch.Tensor:
    """Mean horizontal pixel step over the mean brightness (so that dim light does not hide it): complex clutter's
    texture and distractors raise it far above a flat background's."""
    x = x.float().div(255)
    return (x[..., 1:] - x[..., :-1]).abs().mean((1, 2, 3)) / x.mean((1, 2, 3))


def test_a_subdirectory_varies_its_factor_and_holds_the_others_at_level_1():
    assert BASE_LEVELS == {"illumination": "normal", "occlusion": "0%", "pixel": "medium", "clutter": "simple"}
    for factor, levels in LEVELS.items():
        for level in levels:
            f = subdirectory_factors(factor, level)
            assert f[factor] == level and {k: v for k, v in f.items() if k != factor} == {
                k: v for k, v in BASE_LEVELS.items() if k != factor}


def test_each_mixture_image_has_one_non_base_factor_and_a_conjunction_image_has_all():
    """Weak light + complex clutter: in a mixture an image is dark on a flat background (the weak-light folder,
    clutter at its base, simple) or normally lit on a busy one (the complex-clutter folder), never both; every image
    of the conjunction is both."""
    knobs = synthetic.Knobs(weak_noise=0.0)   # sensor noise would blur the busyness of dark images
    x, y, sub = synthetic.generate_mixture([("illumination", "weak"), ("clutter", "complex")], [1, 1], 4, 20, 32,
                                           data_seed=0, salt=0, knobs=knobs)
    dark, busy = _brightness(x) < 0.3, _busyness(x) > 0.1
    assert torch.equal(dark, sub == 0) and torch.equal(busy, sub == 1)
    assert (sub == 0).sum() == (sub == 1).sum() == 40
    cx, _ = synthetic.generate_task({"illumination": "weak", "clutter": "complex"}, 4, 20, 32, data_seed=0, salt=0,
                                    knobs=knobs)
    assert (_brightness(cx) < 0.3).all() and (_busyness(cx) > 0.1).all()


@pytest.mark.parametrize("weights, n_classes, per_class", [
    ([1, 1], 3, 4), ([1, 1, 1], 10, 100), ([3, 1], 4, 8), ([2, 1], 10, 5), ([1, 1, 1], 4, 1), ([0.2, 0.5, 0.3], 7, 9),
])
def test_shares_are_exact_per_class_and_in_total(weights, n_classes, per_class):
    counts = synthetic.share_counts(weights, n_classes, per_class)
    total = sum(weights)
    for row in counts:
        assert sum(row) == per_class
        for k, w in zip(row, weights):
            assert k in (math.floor(per_class * w / total), math.ceil(per_class * w / total))
    for d, w in enumerate(weights):   # the split's total of each subdirectory is within one image of its share
        assert abs(sum(row[d] for row in counts) - n_classes * per_class * w / total) < 1


def test_a_stream_files_shares_set_each_classs_images_exactly(tmp_path):
    """3 : 1 weak light to large objects, 8 images per class: 6 dark and 2 lit in every class, in the stream."""
    path = tmp_path / "shares.yaml"
    path.write_text(yaml.safe_dump({"composition": "mixture", "generator": {"weak_noise": 0.0}, "tasks": [
        {"illumination": "strong"}, {"illumination": "weak", "pixel": "large", "shares": {"illumination": 3,
                                                                                          "pixel": 1}}]}))
    task = load_stream(DataConfig(cache_dir=str(tmp_path), stream=str(path), n_classes=4, train_per_class=8,
                                  test_per_class=4)).tasks[1]
    dark = _brightness(task.train_x) < 0.3
    assert [int(dark[task.train_y == c].sum()) for c in range(4)] == [6] * 4
    assert task.factors == {**BASE_LEVELS, "illumination": "weak", "pixel": "large"}


def _by_subdirectory(spec, knobs, per_class, data_seed=0):
    """{(factor, level): {(task, split): images}} of a stream spec's mixture tasks, rendered as the source does."""
    out: dict = {}
    for t, ts in enumerate(spec.tasks):
        for split in (0, 1):
            x, _, sub = synthetic.generate_mixture(ts.subdirectories(), ts.weights(), 3, per_class, 32, data_seed,
                                                   salt=2 * t + split, knobs=knobs, segment=ts.segment)
            for d, subdirectory in enumerate(ts.subdirectories()):
                out.setdefault(subdirectory, {})[t, split] = x[sub == d]
    return out


def _distinct(images: list[torch.Tensor]) -> int:
    return len(torch.unique(torch.cat(images).flatten(1), dim=0))


def test_recordings_belong_to_the_subdirectory_not_to_the_task(monkeypatch):
    """With the camera's drift and the sensor noise off, every frame is its scene: the large-object folder, named by
    round1's tasks 3, 5 and 8, then shows 3 classes x 2 scenes = 6 images over all three tasks and both splits (as
    many as one task shows), where scenes of each task would give up to 18. Tasks 3 and 8 show the same weak-light
    scenes; another instance has other recordings."""
    for name in synthetic.FRAME_JITTER:
        monkeypatch.setitem(synthetic.FRAME_JITTER, name, 0.0)
    knobs = synthetic.Knobs(scenes_per_class=2, weak_noise=0.0)
    spec = load_spec("round1-mixture")
    frames = _by_subdirectory(spec, knobs, per_class=30)
    large = frames["pixel", "large"]
    assert {t for t, _ in large} == {3, 5, 8}
    assert _distinct(list(large.values())) == 6 == _distinct([large[3, 0]])
    weak = frames["illumination", "weak"]
    assert _distinct([weak[3, 0], weak[3, 1], weak[8, 0], weak[8, 1]]) == 6
    other = _by_subdirectory(spec, knobs, per_class=30, data_seed=1)   # another instance: other recordings
    assert _distinct([large[3, 0], other["pixel", "large"][3, 0]]) == 12


def test_a_frame_is_in_one_split_only_but_near_the_other_tasks_frames_of_its_recordings():
    """Frames drift (FRAME_JITTER): no image of a subdirectory appears twice over tasks 3, 5 and 8 and their splits;
    yet task 8's test frames of the large-object folder are much nearer to task 5's training frames of that folder
    (same class) than without scenes, where every image is its own draw."""
    spec = load_spec("round1-mixture")

    def nearest(knobs):
        large = _by_subdirectory(spec, knobs, per_class=40)["pixel", "large"]
        assert _distinct(list(large.values())) == sum(len(x) for x in large.values())
        return torch.cdist(large[8, 1].flatten(1).float(), large[5, 0].flatten(1).float()).min(1).values.mean()

    assert nearest(synthetic.Knobs(scenes_per_class=2)) < 0.5 * nearest(synthetic.Knobs())


def test_the_mixture_presets_are_round1s_tasks_and_knobs_as_mixtures(tmp_path):
    assert set(MIXTURE_PRESETS) <= set(PRESETS)
    for mixture, conjunction in MIXTURE_PRESETS.items():
        a, b = load_spec(mixture), load_spec(conjunction)
        assert [t.factors for t in a.tasks] == [t.factors for t in b.tasks]
        assert a.knobs() == b.knobs() and a.base_photometric == b.base_photometric
        assert {t.composition for t in a.tasks} == {"mixture"} and {t.composition for t in b.tasks} == {"conjunction"}
    stream = load_stream(DataConfig(cache_dir=str(tmp_path), stream="round1-mixture", **SMALL))
    assert len(stream) == 9 and sorted(stream.tasks[8].train_y.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    assert stream.tasks[2].factors == {**BASE_LEVELS, "illumination": "normal"}  # clutter simple: its base level


def test_mixture_and_conjunction_streams_have_different_keys(tmp_path):
    for mixture, conjunction in MIXTURE_PRESETS.items():
        keys = {from_dict({"data": {"stream": s, **SMALL}}).key() for s in (mixture, conjunction)}
        assert len(keys) == 2
    for stream in ("round1", "round1-mixture"):
        load_stream(DataConfig(cache_dir=str(tmp_path), stream=stream, n_tasks=2, **SMALL))
    assert len(list(tmp_path.glob("synthetic-*.pt"))) == 2           # and different generated-data caches
    path = tmp_path / "shares.yaml"
    body = {"composition": "mixture", "tasks": [{"illumination": "weak"}, {"illumination": "weak", "pixel": "large"}]}
    path.write_text(yaml.safe_dump(body))
    equal = from_dict({"data": {"stream": str(path), **SMALL}}).key()
    body["tasks"][1]["shares"] = {"illumination": 2, "pixel": 1}
    path.write_text(yaml.safe_dump(body))
    assert from_dict({"data": {"stream": str(path), **SMALL}}).key() != equal


def test_conjunction_streams_keep_their_spec_and_go_through_generate_task(tmp_path):
    """Every existing stream is a conjunction: its spec's plain data (the run key's) has no composition field, an
    explicit `composition: conjunction` changes neither key nor pixels, and its images are generate_task's (which
    tests/test_streams.py checks bit for bit against the generator before streams were data)."""
    for name in set(PRESETS) - set(MIXTURE_PRESETS):
        assert all(set(t) <= {"name", "segment", *LEVELS} for t in load_spec(name).to_dict()["tasks"]), name
    cfg = DataConfig(cache_dir=str(tmp_path), **SMALL)
    spec = load_spec("round1-calibrated")
    for t, task in enumerate(load_stream(cfg).tasks[:3]):
        x, y = synthetic.generate_task(spec.tasks[t].factors, 3, 4, 32, 0, salt=2 * t, knobs=spec.knobs(), task=t)
        assert torch.equal(task.train_x, x) and torch.equal(task.train_y, y)
        assert task.factors == {**NEUTRAL, **spec.tasks[t].factors}
    paths = []
    for extra in ({}, {"composition": "conjunction"}):
        paths.append(tmp_path / f"s{len(paths)}.yaml")
        paths[-1].write_text(yaml.safe_dump({"name": "s", "tasks": [{"illumination": "weak"}, {"pixel": "large"}],
                                             **extra}))
    a, b = (load_stream(DataConfig(cache_dir=str(tmp_path / p.stem), stream=str(p), **SMALL)) for p in paths)
    assert all(torch.equal(x.train_x, y.train_x) for x, y in zip(a.tasks, b.tasks))
    assert load_spec(str(paths[0])).to_dict() == load_spec(str(paths[1])).to_dict()


@pytest.mark.parametrize("body, message", [
    ({"composition": "blend"}, "composition='blend' must be one of: conjunction, mixture"),
    ({"tasks": [{}, {"illumination": "weak", "composition": "mix"}]}, "task 1: composition='mix' must be one of"),
    ({"tasks": [{}, {"illumination": "weak", "shares": {"illumination": 1}}]},
     "task 1: shares apply to a mixture task only"),
    ({"composition": "mixture", "tasks": [{"pixel": "small"}, {"illumination": "weak", "shares": {"pixel": 1}}]},
     "task 1: shares names 'pixel', which the task does not; its factors: illumination"),
    ({"composition": "mixture", "tasks": [{"pixel": "small"}, {"illumination": "weak", "pixel": "large",
                                                                "shares": {"illumination": 1}}]},
     "task 1: shares leaves out 'pixel'"),
    ({"composition": "mixture", "tasks": [{"pixel": "small"}, {"illumination": "weak", "shares": {"illumination": 0}}]},
     "task 1: shares.illumination=0 must be a positive number"),
    ({"composition": "mixture", "tasks": [{"pixel": "small"}, {"illumination": "weak",
                                                                "shares": {"illumination": "2"}}]},
     "task 1: shares.illumination='2' must be a positive number"),
    ({"composition": "mixture", "tasks": [{"pixel": "small"}, {"illumination": "weak", "shares": [1]}]},
     "task 1: shares must map each factor the task names"),
    ({"composition": "mixture", "tasks": [{}, {"pixel": "small"}]}, "task 0: a mixture task names at least one factor"),
])
def test_a_bad_composition_or_share_is_one_line_naming_the_task_and_field(tmp_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"tasks": [{}, {}], **body}))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as e:
        DataConfig(stream=str(path))
    assert "\n" not in str(e.value) and str(path) in str(e.value)
