"""The embedded benchmark: deterministic, factor-controlled, cached, mirrors the round-1 table."""
import torch
import pytest

from dynnn_lib import ConfigError, DataConfig
from dynnn_lib.data import load_stream, synthetic


def test_default_stream_mirrors_round1_table():
    assert len(synthetic.ROUND1_STREAM) == 9
    assert synthetic.ROUND1_STREAM[3] == {"illumination": "weak", "pixel": "large"}   # the paper's big-forgetting task
    s = load_stream(DataConfig(n_classes=3, train_per_class=2, test_per_class=2))
    assert len(s) == 9 and s.n_classes == 3
    assert s.tasks[3].factors == {"illumination": "weak", "occlusion": "0%", "pixel": "large", "clutter": "normal"}
    assert s.tasks[0].name == "task 0: occlusion 10%, pixel small"
    for t in s.tasks:
        assert t.train_x.shape == (6, 3, 32, 32) and t.train_x.dtype == torch.uint8
        assert sorted(t.train_y.tolist()) == [0, 0, 1, 1, 2, 2]


def test_generation_is_deterministic_and_seeded():
    a = synthetic.generate_task({"clutter": "complex"}, 4, 3, 32, data_seed=1, salt=0)
    b = synthetic.generate_task({"clutter": "complex"}, 4, 3, 32, data_seed=1, salt=0)
    c = synthetic.generate_task({"clutter": "complex"}, 4, 3, 32, data_seed=2, salt=0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def _render(**factors):
    protos = synthetic.class_prototypes(3, 0)
    labels = torch.arange(3).repeat(20)
    return synthetic.render(factors, labels, protos, 32, torch.Generator().manual_seed(0)).float()


def test_factor_levels_have_their_physical_effect():
    normal, strong, weak = (_render(illumination=l) for l in ("normal", "strong", "weak"))
    assert weak.mean() < 0.5 * normal.mean() < strong.mean()
    simple, complex_ = _render(clutter="simple"), _render(clutter="complex")
    # busy backgrounds have far more high-frequency energy
    hf = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()
    assert hf(complex_) > 2 * hf(simple)
    # an occluder covers part of the object: fewer distinct colours at 50 %
    assert not torch.equal(_render(occlusion="0%"), _render(occlusion="50%"))


def test_unknown_factor_or_level_is_rejected():
    with pytest.raises(ConfigError, match="unknown factor 'weather'"):
        synthetic.full_factors({"weather": "rain"})
    with pytest.raises(ConfigError, match="choose one of: strong, normal, weak"):
        synthetic.full_factors({"illumination": "dim"})
    with pytest.raises(ConfigError, match="percentage"):
        synthetic.full_factors({"occlusion": "half"})


def test_stream_is_cached_on_disk(tmp_path):
    cfg = DataConfig(n_classes=2, train_per_class=2, test_per_class=1, n_tasks=2, cache_dir=str(tmp_path))
    first = load_stream(cfg)
    files = list(tmp_path.glob("synthetic-*.pt"))
    assert len(files) == 1
    files[0].write_bytes(b"damaged")        # a damaged cache is regenerated, not trusted
    again = load_stream(cfg)
    assert torch.equal(first.tasks[1].test_x, again.tasks[1].test_x)


def test_the_configurations_count_of_embedded_tasks_is_the_streams():
    from dynnn_lib.core.config import EMBEDDED_TASKS

    assert EMBEDDED_TASKS == len(synthetic.ROUND1_STREAM)



def test_colour_candidates_keep_classes_apart_and_one_is_the_independent_draw():
    """Knobs.colour_candidates: k = 1 (the default) draws every class's colours independently, the stream the
    calibration read (checked bit for bit against the code before the knob when it was added); k > 1 takes each class's pair farthest from the classes before it, so the two classes of an instance
    whose colours are closest are further apart than by chance."""
    def closest(p):  # the smallest distance between two classes' mean colours over their silhouettes
        mean = (p[:, :3] * p[:, 3:]).sum((2, 3)) / p[:, 3:].sum((2, 3))
        d = torch.cdist(mean, mean) + torch.eye(len(p)) * 9
        return float(d.min())

    one = [synthetic.class_prototypes(10, k) for k in range(1, 9)]
    apart = [synthetic.class_prototypes(10, k, candidates=16) for k in range(1, 9)]
    assert sum(map(closest, apart)) > 1.5 * sum(map(closest, one))
    with pytest.raises(ConfigError, match="colour_candidates=0 must be an integer in 1..64"):
        DataConfig(generator={"colour_candidates": 0}).knobs()


def test_scenes_make_test_images_frames_of_the_training_recordings():
    """Knobs.scenes_per_class: with S scenes per class a task's train and test images are frames of the same
    recordings (a scene's draw, jittered), as the dataset's are of the same short videos: a test image's nearest
    training image is then of its own class and far nearer than without scenes, where every image is its own draw.
    S = 0 (the default) is the stream before the knob (checked bit for bit against that code when it was added)."""
    def nearest(knobs):
        task0 = {"pixel": "small", "occlusion": "10%"}
        tr_x, tr_y = synthetic.generate_task(task0, 5, 40, 32, data_seed=3, salt=0, knobs=knobs, task=0)
        te_x, te_y = synthetic.generate_task(task0, 5, 10, 32, data_seed=3, salt=1, knobs=knobs, task=0)
        d = torch.cdist(te_x.flatten(1).float(), tr_x.flatten(1).float())
        same = te_y[:, None] == tr_y[None]
        return d.masked_fill(~same, float("inf")).min(1).values, d.masked_fill(same, float("inf")).min(1).values

    off_same, off_other = nearest(synthetic.Knobs())
    on_same, on_other = nearest(synthetic.Knobs(scenes_per_class=2))
    assert (on_same < on_other).all()                     # every test frame's nearest neighbour is of its class
    assert on_same.mean() < 0.25 * off_same.mean()        # and much nearer than an independent draw's
    assert off_same.mean() > 0.8 * off_other.mean()       # without scenes, no such shortcut
    again = synthetic.generate_task({"pixel": "small"}, 5, 4, 32, 3, salt=1, knobs=synthetic.Knobs(scenes_per_class=2))
    first = synthetic.generate_task({"pixel": "small"}, 5, 4, 32, 3, salt=1, knobs=synthetic.Knobs(scenes_per_class=2),
                                    task=0)
    assert torch.equal(again[0], first[0])                # the task defaults to salt // 2: deterministic
    default = synthetic.generate_task({"clutter": "complex"}, 4, 3, 32, data_seed=1, salt=0)
    zero = synthetic.generate_task({"clutter": "complex"}, 4, 3, 32, data_seed=1, salt=0,
                                   knobs=synthetic.Knobs(scenes_per_class=0))
    assert torch.equal(default[0], zero[0])
    with pytest.raises(ConfigError, match=r"scenes_per_class=-1 must be an integer in 0..1000 \(0: off\)"):
        DataConfig(generator={"scenes_per_class": -1}).knobs()

