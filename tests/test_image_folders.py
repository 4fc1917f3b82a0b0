"""Your own data (the image-folders source): a folder per task, a folder per class inside, on generated files;
the task count read from folder names; every bad layout one line naming the folder or file and the fix."""
import pytest
import torch

from dynnn_lib import ConfigError, DataConfig, DataError
from dynnn_lib.cli import main
from dynnn_lib.data import load_stream, stream_length
from fixtures import make_image_folders

TINY = ["--preset", "tiny", "--no-progress", "--jobs", "1", "--seeds", "1", "--set", "data.image_size=16",
        "--set", "data.load_workers=0"]


def cfg(root, **kw):
    return DataConfig(source="image-folders", root=str(root), image_size=16, load_workers=0,
                      cache_dir=str(root.parent / "cache"), **kw)


def test_tasks_in_natural_order_classes_shared_images_resized(tmp_path):
    root = make_image_folders(tmp_path / "mine")
    (root / ".hidden").mkdir()
    (root / "notes.txt").write_text("not a task")
    (root / "1-day/train/cup/readme.md").write_text("not an image")
    stream = load_stream(cfg(root))
    assert [t.name for t in stream.tasks] == ["task 0: 1-day", "task 1: 2-dusk", "task 2: 10-night"]
    assert stream.class_names == ["cup", "mug", "pen"] and stream.source == "image-folders"
    t0 = stream.tasks[0]
    assert t0.train_x.shape == (9, 3, 16, 16) and t0.train_x.dtype == torch.uint8  # mixed sizes, resized
    assert t0.train_y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert t0.val_x is not None and len(t0.val_y) == 9 and len(t0.test_y) == 9
    assert int(t0.train_x[:3, 0].float().mean()) > int(t0.train_x[3:6, 0].float().mean())  # cup is red: the pixels


def test_the_task_count_reads_folder_names_only(tmp_path, monkeypatch):
    from dynnn_lib.data import images

    root = make_image_folders(tmp_path / "mine", validation=False)
    monkeypatch.setattr(images, "_decode", lambda *a: pytest.fail("counting decoded an image"))
    assert stream_length(cfg(root)) == 3
    assert stream_length(cfg(root, n_tasks=2)) == 2
    assert stream_length(cfg(root, tasks=["10-night", "1-day"])) == 2


def test_the_tasks_parameter_chooses_and_orders_the_folders(tmp_path):
    root = make_image_folders(tmp_path / "mine", validation=False)
    stream = load_stream(cfg(root, tasks=["10-night", "1-day"]))
    assert [t.name for t in stream.tasks] == ["task 0: 10-night", "task 1: 1-day"]
    assert stream.tasks[0].val_x is None  # no validation/: the decision reads train
    with pytest.raises(ConfigError, match="data.tasks=.* must be a list of task folder names"):
        cfg(root, tasks=[1, 2])
    with pytest.raises(DataError, match="task folder .*/nope does not exist; fix data.tasks"):
        load_stream(cfg(root, tasks=["1-day", "nope"]))


def _remove(path):
    for f in sorted(path.rglob("*"), reverse=True):
        f.unlink() if f.is_file() else f.rmdir()
    path.rmdir()


@pytest.mark.parametrize("breaker, message", [
    (lambda r: _remove(r / "2-dusk/train") or _remove(r / "2-dusk/test") or _remove(r / "2-dusk/validation"),
     r"task .*2-dusk is empty; it needs .*2-dusk/train/<class>/ and .*2-dusk/test/<class>/ with images"),
    (lambda r: [f.unlink() for f in (r / "2-dusk/test").rglob("*.*")],
     r"task .*2-dusk has no test images; expected .*2-dusk/test/<class>/\*.jpg"),
    (lambda r: _remove(r / "10-night/train/mug"),
     r"class 'mug' is missing from task '10-night' \(.*10-night/train/mug has no images, 1-day/train has them\): "
     r"every task holds every class"),
    (lambda r: _remove(r / "2-dusk/validation"),
     r"2-dusk/validation is missing \(another task has one: every task needs it\)"),
    (lambda r: (r / "1-day/train/pen/1.png").write_bytes(b"not a png"),
     r"image .*1-day/train/pen/1.png cannot be read \(UnidentifiedImageError\); replace or remove the corrupt file"),
    (lambda r: [_remove(p) for p in list(r.iterdir())],
     r"has no task folders; expected .*/<task>/train/<class>/\*.jpg"),
])
def test_a_bad_layout_is_one_line_naming_the_folder_and_the_fix(tmp_path, breaker, message):
    root = make_image_folders(tmp_path / "mine", per_class=2)
    breaker(root)
    with pytest.raises(DataError, match=message) as e:
        load_stream(cfg(root))
    assert "\n" not in str(e.value)


def test_bad_configuration_is_one_line():
    with pytest.raises(ConfigError, match="data.source='image-folders' needs data.root: the folder holding one "
                                          "folder per task"):
        DataConfig(source="image-folders")
    with pytest.raises(ConfigError, match="data.generator only applies to data.source='synthetic', not "
                                          "'image-folders'; drop it"):
        DataConfig(source="image-folders", root="/x", generator={"weak_gain": 0.2})
    with pytest.raises(ConfigError, match="data.factor only applies to data.source='openloris-benchmark1', not "
                                          "'image-folders'; drop it"):
        DataConfig(source="image-folders", root="/x", factor="pixel")
    with pytest.raises(ConfigError, match="unknown parameter data.taks; valid names: cache_dir, decide_on, "
                                          "image_size, load_workers, n_tasks, resize, root, source, tasks"):
        DataConfig(source="image-folders", root="/x", taks=["a"])
    with pytest.raises(ConfigError, match="data.n_classes only applies to data.source='synthetic'"):
        DataConfig(source="image-folders", root="/x", params={"n_classes": 4})  # in its own params: checked
    # at the top level the generated stream's sizes are ignored elsewhere, as they always were (presets set them)
    assert DataConfig(source="image-folders", root="/x", n_classes=4).params == {"tasks": ()}
    with pytest.raises(ConfigError, match=r"data.source='mine' is not registered; choose one of: image-folders, "
                                          r"openloris-benchmark1, .*synthetic \(a plugin: import its module first"):
        DataConfig(source="mine")


def test_own_folder_runs_end_to_end_from_the_cli(tmp_path, capsys):
    root = make_image_folders(tmp_path / "mine")
    rc = main(["run", "--runs-dir", str(tmp_path / "runs"), *TINY, "--set", f"data.cache_dir={tmp_path / 'cache'}",
               "--data-source", "image-folders", "--data-root", str(root), "--method", "combined", "--expand", "1"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "after\\test" in out.out and "square: " in out.out  # the glossary's name for the overall mean
    assert main(["sources"]) == 0
    assert "image-folders" in capsys.readouterr().out


def test_a_sweep_checks_the_schedule_against_the_folders_task_count_before_training(tmp_path, capsys):
    import yaml

    root = make_image_folders(tmp_path / "mine", tasks=("a", "b"), validation=False)  # 2 tasks, read from folders
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"name": "own", "base": {
        "method": "combined", "data": {"source": "image-folders", "root": str(root), "image_size": 16}},
        "grid": {"expand_at": [[1], [2]]}}))
    rc = main(["sweep", str(spec), "--dry-run", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and "expand_at=[2] is out of range: the stream has 2 tasks (0..1)" in err


def test_a_failed_run_says_its_error_once(tmp_path, capsys):
    """A run whose data is broken fails every seed alike; the command says the error once, as `dynnn: error:`,
    and not again from the progress bar (it did, with an empty label: `run failed (; key ...)`)."""
    root = make_image_folders(tmp_path / "mine", per_class=2)
    _remove(root / "10-night/train/mug")
    argv = [a for a in TINY if a != "--no-progress"]
    argv[argv.index("--seeds") + 1] = "2"
    rc = main(["run", "--runs-dir", str(tmp_path / "runs"), *argv, "--set", f"data.cache_dir={tmp_path / 'cache'}",
               "--data-source", "image-folders", "--data-root", str(root), "--method", "finetune"])
    out = capsys.readouterr()
    said = out.out + out.err
    assert rc == 2, said
    assert said.count("class 'mug' is missing") == 1, said
    assert "dynnn: error: class 'mug' is missing" in said and "(;" not in said and "run failed" not in said
