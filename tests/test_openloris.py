"""Real-data loaders on generated fixtures of both official layouts, and every bad-input error."""
from pathlib import Path

import pytest
import torch

from dynnn_lib import DataConfig, DataError, from_dict, run
from dynnn_lib.data import load_stream
from fixtures import make_folders, make_round1


def cfg(source, root, **kw):
    return DataConfig(source=source, root=str(root), image_size=16, **kw)


def test_round1_layout_loads_batches_in_numeric_order(tmp_path):
    root = make_round1(tmp_path / "lor", n_batches=3)
    # batch10 must sort after batch2: add a tenth batch by renaming
    for split in ("train", "validation", "test"):
        (root / split / "batch3").rename(root / split / "batch10")
    stream = load_stream(cfg("openloris-round1", root))
    assert [t.name for t in stream.tasks] == ["task 0: batch1", "task 1: batch2", "task 2: batch10"]
    assert stream.n_classes == 3
    t0 = stream.tasks[0]
    assert t0.train_x.shape == (12, 3, 16, 16) and t0.train_x.dtype == torch.uint8
    assert sorted(t0.train_y.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    assert len(t0.test_y) == 12


def test_round1_without_index_column(tmp_path):
    stream = load_stream(cfg("openloris-round1", make_round1(tmp_path / "lor", index_col=False)))
    assert len(stream) == 3


def test_folder_layout_maps_class_names_and_resizes_mixed_sizes(tmp_path):
    root = make_folders(tmp_path / "lor")  # task k images are (18+k) px: resized to 16
    stream = load_stream(cfg("openloris-folders", root))
    assert stream.class_names == ["bottle", "cup", "knife"]
    assert len(stream) == 3
    assert stream.tasks[2].train_x.shape == (9, 3, 16, 16)
    assert stream.tasks[0].train_y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_a_run_trains_on_real_layout(tmp_path):
    root = make_round1(tmp_path / "lor")
    c = from_dict({"method": "kd", "base_epochs": 3, "inc_epochs": 1, "base_milestones": [3], "inc_milestones": [1],
                   "pretrained": False, "data": {"source": "openloris-round1", "root": str(root), "image_size": 16}})
    res = run(c, runs_dir=tmp_path / "runs")
    assert res.matrix.shape == (3, 3)
    assert res.status == "complete"


@pytest.mark.parametrize("breaker, message", [
    (lambda r: r / "nope", "does not exist"),
    (lambda r: (__import__("shutil").rmtree(r / "test"), r)[1], "test is missing"),
    (lambda r: ((r / "train/batch2/label.csv").write_text("name,class\na.png,1\n"), r)[1], "expected 'file name' and 'label'"),
    (lambda r: ((r / "train/batch2/label.csv").write_text(",file name,label\n0,b2_c0_0.png\n"), r)[1], "fields"),
    (lambda r: ((r / "train/batch2/label.csv").write_text(",file name,label\n0,b2_c0_0.png,cat\n"), r)[1], "not an integer"),
    (lambda r: ((r / "train/batch2/label.csv").write_text(",file name,label\n0,b2_c0_0.png,-1\n"), r)[1], "out of range"),
    (lambda r: ((r / "test/batch2/label.csv").write_text(",file name,label\n0,b2_c0_0.png,7\n"), r)[1], "out of range 0..2"),
    (lambda r: ((r / "train/batch1/b1_c0_0.png").write_bytes(b"not an image"), r)[1], "cannot be read"),
    (lambda r: ((r / "train/batch1/label.csv").write_text(",file name,label\n0,ghost.png,0\n"), r)[1], "does not exist"),
    (lambda r: ((r / "train/batch1/label.csv").unlink(), r)[1], "label.csv is missing"),
    (lambda r: ((r / "train/batch1/label.csv").write_text(""), r)[1], "is empty"),
])
def test_round1_bad_input_gives_one_line_error(tmp_path, breaker, message):
    root = breaker(make_round1(tmp_path / "lor"))
    with pytest.raises(DataError) as e:
        load_stream(cfg("openloris-round1", root))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_mixed_sizes_without_resize_is_an_error(tmp_path):
    root = make_folders(tmp_path / "lor", n_tasks=2)
    from PIL import Image
    Image.new("RGB", (40, 30)).save(root / "train/task1/cup/0.jpg")
    with pytest.raises(DataError, match="mixed sizes.*data.resize=true"):
        load_stream(cfg("openloris-folders", root, resize=False))


def test_a_stream_with_one_task_is_rejected(tmp_path):
    root = make_folders(tmp_path / "lor", n_tasks=1)
    with pytest.raises(DataError, match="at least 2 tasks"):
        load_stream(cfg("openloris-folders", root))


def test_folder_layout_missing_task_folders(tmp_path):
    (tmp_path / "lor/train").mkdir(parents=True)
    (tmp_path / "lor/test").mkdir(parents=True)
    with pytest.raises(DataError, match="no task<k> folders"):
        load_stream(cfg("openloris-folders", tmp_path / "lor"))


def test_real_source_needs_a_root():
    from dynnn_lib import ConfigError
    with pytest.raises(ConfigError, match="needs data.root"):
        DataConfig(source="openloris-round1")
