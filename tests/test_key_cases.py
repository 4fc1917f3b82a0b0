"""Each case the shared-equals-alone property once missed, with the test that fails without its fix: Adam's state
in task 0's prefix, a method that consolidates task 0 by changing weights, code edited in a live process, a
notebook global, values that print alike, the environment, real data by content, and keys of what trains only
(a docstring, a metric or a report edited retrains nothing; a loss edited retrains what uses it)."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny
from dynnn_lib import run
from dynnn_lib.core import fingerprint
from dynnn_lib.core.registry import _REGISTRY
from dynnn_lib.engine.cache import load_outputs
from dynnn_lib.engine.checkpoints import PREFIXES
from dynnn_lib.methods.base import register
from dynnn_lib.methods.finetune import Finetune
from test_keys import NOTEBOOK, GlobalSmooth, ShrinkOnEnd
from test_prefixes import _same_run


@pytest.fixture(autouse=True)
def _registered():
    for cls in (ShrinkOnEnd, GlobalSmooth):
        register(cls)
    yield
    for cls in (ShrinkOnEnd, GlobalSmooth):
        _REGISTRY.pop(cls.name, None)


# ------------------------------------------------------------------ training state in the shared prefix
def test_a_keep_run_resuming_another_methods_task_0_carries_its_adam_state(tmp_path):
    """kd then finetune, both optimizer_state=keep, in one folder: finetune starts task 1 with task 0's Adam, as
    trained alone (it started with a fresh one when the prefix left the state out)."""
    kd, ft = tiny(method="kd", optimizer_state="keep"), tiny(method="finetune", optimizer_state="keep")
    run(kd, tmp_path / "shared")
    shared = run(ft, tmp_path / "shared")
    assert shared.timings["reused_tasks"] == 1
    _same_run(shared, run(ft, tmp_path / "alone"))


@pytest.mark.parametrize("first", ["finetune", "t-shrink-on-end"])
def test_a_method_that_changes_weights_in_end_task_neither_gives_nor_takes_a_consolidated_task_0(first, tmp_path):
    """Task 0's prefix holds the weights as training left them: a method whose end_task(0) changes them
    consolidates and evaluates task 0 itself, and the others never see its change, in either order."""
    names = [first, "t-shrink-on-end" if first == "finetune" else "finetune", "lwf"]
    shared = {m: run(tiny(method=m), tmp_path / "shared") for m in names}
    for m in names:
        _same_run(shared[m], run(tiny(method=m), tmp_path / f"alone-{m}"))
    assert shared["lwf"].timings["reused_tasks"] == 1
    group = next((tmp_path / "shared" / PREFIXES).iterdir())
    task0 = torch.load(next(group.glob("0-*.pt")), weights_only=False)
    assert task0["evaluated"] is True  # stored by the first method that leaves task 0 as it is


# ------------------------------------------------------------------ the code as it is when the run starts
def test_a_plugin_file_edited_in_the_same_process_changes_its_key(tmp_path, monkeypatch):
    import importlib
    import sys

    plugin = tmp_path / "edited_live.py"
    text = ('from dynnn_lib.methods import register\nfrom dynnn_lib.methods.finetune import Finetune\n\n\n'
            '@register\nclass Live(Finetune):\n    name = "t-live"\n    SCALE = 1.0\n')
    plugin.write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("edited_live")
    try:
        key = tiny(method="t-live").key()
        plugin.write_text(text.replace("1.0", "2.0"))  # the file on disk, not yet reloaded: the same size
        assert tiny(method="t-live").key() != key
        plugin.write_text(text)
        assert tiny(method="t-live").key() == key
        sys.modules["edited_live"].Live.SCALE = 3.0  # patched in place, as %autoreload does
        assert tiny(method="t-live").key() != key
    finally:
        _REGISTRY.pop("t-live", None)
        sys.modules.pop("edited_live", None)


def test_a_notebook_global_and_values_that_print_alike_enter_the_key_by_content():
    key = tiny(method="t-global-smooth").key()
    NOTEBOOK["ALPHA"] = 0.25
    try:
        assert tiny(method="t-global-smooth").key() != key
    finally:
        NOTEBOOK["ALPHA"] = 0.0
    assert tiny(method="t-global-smooth").key() == key

    def digest(v):
        return fingerprint._digest_of(v, 0)

    a, b = torch.tensor([1.5, 1.0]), torch.tensor([1.5, 1.0000001])
    assert repr(a) == repr(b) and digest(a) != digest(b)

    class Opaque:  # an object whose repr is only its type
        def __init__(self, x):
            self.x = x

    assert digest(Opaque(1)) != digest(Opaque(2)) and digest(Opaque(1)) == digest(Opaque(1))


def test_a_docstring_a_metric_or_a_report_edited_retrains_nothing_a_loss_edited_retrains_its_method():
    pkg = fingerprint.PACKAGE
    methods = ("finetune", "lwf", "kd")
    keys = lambda: {m: tiny(method=m).key() for m in methods}  # noqa: E731
    before = keys()
    edits = {pkg / "methods" / "training.py": lambda s: s.replace('"""', '"""An edited docstring. ', 1),
             pkg / "evaluation" / "metrics.py": lambda s: s + "\nEDITED_METRIC = 1\n",
             pkg / "reports" / "blocks.py": lambda s: s + "\nEDITED_REPORT = 1\n",
             pkg / "engine" / "verify.py": lambda s: s + "\nEDITED = 1\n"}
    with _edited(edits):
        assert keys() == before
    with _edited({pkg / "methods" / "training.py": lambda s: s + "\nEDITED_CODE = 1\n"}):  # shared code: every key
        assert all(k != before[m] for m, k in keys().items())
    lwf = pkg / "methods" / "lwf.py"
    with _edited({lwf: lambda s: s + "\n\ndef _edited_loss(x):\n    return 2 * x\n"}):
        after = keys()
    assert after["lwf"] != before["lwf"] and after["finetune"] == before["finetune"] and after["kd"] == before["kd"]


class _edited:
    """Edit package files for a block and restore their exact bytes after it."""

    def __init__(self, edits):
        self.edits, self.saved = edits, {}

    def __enter__(self):
        for path, edit in self.edits.items():
            self.saved[path] = path.read_bytes()
            path.write_text(edit(self.saved[path].decode()))

    def __exit__(self, *exc):
        for path, raw in self.saved.items():
            path.write_bytes(raw)


# ------------------------------------------------------------------ the environment of a result
def test_the_environment_threads_and_weights_files_enter_the_key(tmp_path, monkeypatch):
    cfg = tiny()
    key, env = cfg.key(), cfg.key_inputs()["environment"]
    import numpy
    assert env["torch"] == torch.__version__ and env["numpy"] == numpy.__version__
    assert env["device"] == {"cpu": fingerprint.cpu()["signature"]}
    real = fingerprint.environment
    other = {**real("cpu"), "device": {"cpu": "Another CPU|26|1|0"}}
    monkeypatch.setattr(fingerprint, "environment", lambda device="cpu": other)
    assert tiny().key() != key
    monkeypatch.setattr(fingerprint, "environment", real)
    assert tiny(threads=2).key() != key and tiny(threads=2).threads == 2
    monkeypatch.setenv("DYNNN_THREADS", "3")  # read when a configuration is made, never at key time
    assert cfg.key() == key == tiny(threads=1).key() and tiny().threads == 3

    from dynnn_lib.core.weights import IMAGENET_FILES

    monkeypatch.setenv("DYNNN_WEIGHTS", str(tmp_path))
    weights = tmp_path / IMAGENET_FILES["resnet18"]
    weights.write_bytes(b"first weights")
    imagenet = tiny(backbone="resnet18", pretrained="imagenet", threads=1)
    before = imagenet.key()
    weights.write_bytes(b"other weights")  # the same size, by content
    assert imagenet.key() != before


def test_real_data_enters_the_key_by_content_through_symlinked_folders(tmp_path):
    from fixtures import make_image_folders

    real = make_image_folders(tmp_path / "real")
    root = tmp_path / "linked"
    root.mkdir()
    for task in real.iterdir():
        (root / task.name).symlink_to(task, target_is_directory=True)
    cfg = tiny(data={"source": "image-folders", "root": str(root), "n_tasks": None})
    key = cfg.key()
    image = next((real / "1-day" / "train" / "cup").glob("*.jpg"))
    st, raw = image.stat(), bytearray(image.read_bytes())
    raw[-3] ^= 0xFF  # one byte of one image behind a link, size and mtime kept
    image.write_bytes(bytes(raw))
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cfg.key() != key


# ------------------------------------------------------------------ why did this retrain?
def test_why_prints_a_runs_key_inputs_and_what_differs(tmp_path, capsys, monkeypatch):
    import yaml

    from dynnn_lib.cli import main
    from dynnn_lib.engine.why import stored_elsewhere

    runs = tmp_path / "runs"
    a, b = run(tiny(), runs), run(tiny(seed=1), runs)
    ka, kb = a.config.key(), b.config.key()
    assert json.loads((runs / ka / "key.json").read_text()) == a.config.key_inputs()
    assert main(["why", ka[:8], "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "config.seed: 0" in out and "code.files.engine/train.py:" in out and "environment.torch:" in out
    assert main(["why", ka, kb[:10], "--runs-dir", str(runs)]) == 0
    assert capsys.readouterr().out.strip() == f"config.seed: 0 ({ka}) -> 1 ({kb})"
    (tmp_path / "next.yaml").write_text(yaml.safe_dump(tiny().to_dict()))
    assert main(["why", ka, str(tmp_path / "next.yaml"), "--set", "inc_epochs=2", "--runs-dir", str(runs)]) == 0
    assert "config.inc_epochs: 1" in capsys.readouterr().out
    real = fingerprint.code_inputs  # the loop edited: the same configurations are stored under their old keys

    def edited(entry=fingerprint.TRAINING_ENTRY):
        inputs = real(entry)
        return {"digest": "edited", "files": {**inputs["files"], "engine/train.py": "edited"}}

    monkeypatch.setattr(fingerprint, "code_inputs", edited)
    found = stored_elsewhere([tiny(), tiny(seed=1), tiny(seed=2)], runs)
    assert [folder.name for _, folder in found] == [ka, kb]
    from dynnn_lib.engine.why import differences, explain, inputs_of
    assert explain(differences(inputs_of(runs / ka), tiny().key_inputs())) == "code: dynnn_lib/engine/train.py changed"
    assert main(["why", "nope", "--runs-dir", str(runs)]) == 2
    assert "matches 0 runs" in capsys.readouterr().err


def test_a_colleagues_run_from_another_cpu_is_served_only_when_said_and_verified_within_tolerance(tmp_path,
                                                                                                 monkeypatch):
    from dynnn_lib.engine.cache import cached_result
    from dynnn_lib.engine.verify import WITHIN, IDENTICAL, choose, verify

    runs = tmp_path / "runs"
    real = fingerprint.environment
    theirs = {**real("cpu"), "device": {"cpu": "Colleague CPU|26|1|0"}}
    monkeypatch.setattr(fingerprint, "environment", lambda device="cpu": theirs)
    cfg = tiny()
    res = run(cfg, runs)
    their_key = cfg.key()
    monkeypatch.setattr(fingerprint, "environment", real)
    assert cfg.key() != their_key and cached_result(cfg, runs) is None
    monkeypatch.setenv("DYNNN_ACROSS_CPUS", "1")
    with pytest.warns(UserWarning, match="another CPU"):
        served = cached_result(cfg, runs)
    assert served is not None and served.path.parent.name == their_key
    monkeypatch.delenv("DYNNN_ACROSS_CPUS")
    # it trained here: verify as if on another machine than the one that trained it, as the colleague's would be
    monkeypatch.setattr("dynnn_lib.engine.verify.cpu", lambda: {"signature": "This CPU|25|17|1"})
    assert res.provenance["cpu"] != "This CPU|25|17|1"
    [check] = verify(choose(runs, [their_key], None), jobs=1, progress=False)
    assert check.status == WITHIN and check.max_diff == 0.0
    assert IDENTICAL != WITHIN


# ------------------------------------------------------------------ the trunk's start (the stand-in's arms)
def test_neutral_pretraining_shows_no_factor_level_and_is_its_own_key():
    """pretrained='neutral': the generated pretraining's count and objects, every image at the neutral levels (a
    trunk that never saw the benchmark's levels); a configuration of its own."""
    from dynnn_lib.model.pretrain import _pretrain_data

    x, y = _pretrain_data(16, neutral=True)
    every, labels = _pretrain_data(16)
    assert x.shape == every.shape and torch.equal(y, labels)
    neutral = tiny(pretrained="neutral")
    assert neutral.key() != tiny(pretrained=True).key() != tiny().key()
    assert x.float().mean(dim=(1, 2, 3)).std() < every.float().mean(dim=(1, 2, 3)).std()  # no strong/weak light
    with pytest.raises(Exception, match="ships its ImageNet weights"):
        tiny(backbone="efficientnet_lite0", pretrained="neutral")


# ------------------------------------------------------------------ what a task changed, measured
class SaysFrozen(Finetune):  # trains the trunk every task
    """Finetune that tells the log its trunk did not change: evaluation must not believe it."""

    name = "t-says-frozen"

    def train_task(self, ctx):
        log = super().train_task(ctx)
        log.trunk_changed = False
        return log


def test_evaluation_measures_what_a_task_changed_not_the_methods_word(tmp_path):
    """A method that trains the trunk but logs trunk_changed=False scores exactly as finetune: the rows are computed
    with the trunk as it is (before, the stale trunk features of the previous task answered for it)."""
    register(SaysFrozen)
    try:
        said = run(tiny(method="t-says-frozen"), tmp_path / "said")
        plain = run(tiny(method="finetune"), tmp_path / "plain")
    finally:
        _REGISTRY.pop(SaysFrozen.name, None)
    assert said.logs[1]["trunk_changed"] is False  # the method's word is still logged
    for rule in plain.matrices:
        np.testing.assert_array_equal(said.matrices[rule], plain.matrices[rule])
    outs = [load_outputs(r).state() for r in (said, plain)]
    assert len(outs[0]["features"]) == len(outs[1]["features"]) == len(plain.matrix)  # new trunk features every task
    assert all(torch.equal(x, y) for x, y in zip(outs[0]["logits"], outs[1]["logits"]))
