"""A data source and a method of one's own, from a module outside the package, with no edit to the package: through
``dynnn run``, a sweep (its worker processes import the module) and the explorer's controls; the source's code is
in its runs' key."""
import importlib
import json
import sys

import pytest
import yaml

from dynnn_lib.cli import main
from dynnn_lib.core.registry import _REGISTRY, _SOURCES
from fixtures import _image

PLUGIN = '''
"""A source listing images in a CSV (task, split, path, class), and a method: finetune at a fraction of the loss."""
import csv
from dataclasses import dataclass

import torch.nn.functional as F

from dynnn_lib.data import Source, register as register_source
from dynnn_lib.data.images import assemble
from dynnn_lib.methods import Method, register


@register_source
class CsvList(Source):
    """Images listed in a CSV file: task, split, path, class."""

    name = "csv-list-test"
    root_hint = "list.csv and the images it names"

    @dataclass(frozen=True)
    class Params:
        file: str = "list.csv"   # the list, relative to data.root

    def rows(self):
        with open(self.root / self.params.file, newline="") as fh:
            return list(csv.DictReader(fh))

    def count_tasks(self):
        return len({r["task"] for r in self.rows()})%(COUNT_EXTRA)s

    def load(self):
        rows = self.rows()
        tasks, classes = sorted({r["task"] for r in rows}, key=int), sorted({r["class"] for r in rows})
        pick = lambda t, s: [r for r in rows if r["task"] == t and r["split"] == s]  # noqa: E731
        splits = {s: [([self.root / r["path"] for r in pick(t, s)], [classes.index(r["class"]) for r in pick(t, s)])
                      for t in tasks] for s in ("train", "test")}
        return assemble(self.data, splits, classes, [f"day {t}" for t in tasks], self.name)


@register
class Fraction(Method):
    """Finetune at a fraction of the loss."""

    name = "fraction-test"

    @dataclass(frozen=True)
    class Params:
        scale: float = 0.5

    def train_task(self, ctx):
        loss = lambda out, batch: {"ce": self.params.scale * F.cross_entropy(out, batch.y)}  # noqa: E731
        return ctx.log("fraction", ctx.fit(ctx.network(), loss, ctx.samples()))
'''


@pytest.fixture
def plugin(tmp_path):
    """The module (tmp_path/byo_plugin_test.py) and a root of 3 tasks x 2 classes listed in list.csv."""
    path = tmp_path / "byo_plugin_test.py"
    path.write_text(PLUGIN % {"COUNT_EXTRA": ""})
    root = tmp_path / "data"
    lines = ["task,split,path,class"]
    for t in range(3):
        for split in ("train", "test"):
            for c, name in enumerate(("cat", "dog")):
                for i in range(3):
                    rel = f"{t}/{split}/{name}{i}.png"
                    _image(root / rel, c, seed=hash((t, split, c, i)) % 2**32)
                    lines.append(f"{t},{split},{rel},{name}")
    (root / "list.csv").write_text("\n".join(lines) + "\n")
    yield path, root
    _SOURCES.pop("csv-list-test", None)
    _REGISTRY.pop("fraction-test", None)
    sys.modules.pop("byo_plugin_test", None)


def _data(root, tmp_path):
    return {"source": "csv-list-test", "root": str(root), "image_size": 16, "load_workers": 0,
            "cache_dir": str(tmp_path / "cache")}


TINY = {"base_epochs": 1, "inc_epochs": 1, "base_milestones": [1], "inc_milestones": [1], "pretrained": False}


def test_dynnn_run_reads_the_source_and_trains_the_method_of_a_module(plugin, tmp_path, capsys):
    path, root = plugin
    argv = ["run", "--runs-dir", str(tmp_path / "runs"), "--preset", "tiny", "--no-progress", "--jobs", "1",
            "--seeds", "1", "--data-source", "csv-list-test", "--data-root", str(root), "--set", "data.image_size=16",
            "--set", "data.load_workers=0", "--set", f"data.cache_dir={tmp_path / 'cache'}", "--method", "fraction-test",
            "--json"]
    assert main(argv) == 2  # not imported: one line naming the registered sources and --import
    err = capsys.readouterr().err
    assert "data.source='csv-list-test' is not registered; choose one of: image-folders," in err and "--import" in err
    assert len(err.strip().splitlines()) == 1
    assert main([*argv, "--import", str(path), "--set", "data.file=list.csv"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["method"] == "fraction-test" and out["config"]["data"]["source"] == "csv-list-test"
    assert out["config"]["data"]["params"] == {"file": "list.csv"}
    assert len(out["matrix_mean"]) == 3 and "overall" in out["metrics"]
    result = json.loads((tmp_path / "runs" / out["keys"][0] / "result.json").read_text())
    assert result["task_names"] == ["day 0", "day 1", "day 2"] and [l["action"] for l in result["logs"]] == \
        ["full", "fraction", "fraction"]
    assert main(["sources", "--import", str(path)]) == 0
    assert "csv-list-test         Images listed in a CSV file: task, split, path, class. [file='list.csv']" \
        in capsys.readouterr().out
    assert main([*argv, "--import", str(path), "--set", "data.fil=x"]) == 2
    assert "unknown parameter data.fil; valid names: cache_dir, decide_on, file, image_size" in capsys.readouterr().err


def test_a_sweep_over_the_plugins_runs_in_worker_processes(plugin, tmp_path, capsys):
    path, root = plugin
    spec = tmp_path / "byo.yaml"
    spec.write_text(yaml.safe_dump({"name": "byo", "base": {**TINY, "method": "fraction-test", "data": _data(root, tmp_path)},
                                    "grid": {"seed": [0, 1], "scale": [0.5, 1.0]}}))
    rc = main(["sweep", str(spec), "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), "--jobs", "2",
               "--no-progress", "--import", str(path)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    report = json.loads((tmp_path / "rep" / "byo" / "sweep.json").read_text())
    assert sorted((r["assign"]["scale"], r["seed"], r["status"]) for r in report["runs"]) == \
        [(0.5, 0, "done"), (0.5, 1, "done"), (1.0, 0, "done"), (1.0, 1, "done")]
    assert {r["config"]["data"]["source"] for r in report["runs"]} == {"csv-list-test"}
    assert len({r["key"] for r in report["runs"]}) == 4 and all(len(r["matrix"]) == 3 for r in report["runs"])


def test_the_explorer_offers_the_plugin_method_on_the_plugin_source(plugin, tmp_path):
    from dynnn_lib.workbench.explorer import Explorer

    path, root = plugin
    sys.path.insert(0, str(path.parent))
    importlib.import_module(path.stem)
    ex = Explorer(base={**TINY, "data": _data(root, tmp_path)}, n_tasks=3, runs_dir=tmp_path / "runs", live=False)
    assert "fraction-test" in ex.method.options
    ex.method.value = "fraction-test"
    assert ex.train() and ex.status.value == "method: fraction-test"
    ex.method.value = "DynamicNN"
    ex.expand.value = (1,)
    assert ex.train() and ex.configs()[0].data.source == "csv-list-test"


def test_the_sources_code_is_in_its_runs_key(plugin, tmp_path):
    from dynnn_lib.core.config import from_dict

    path, root = plugin
    sys.path.insert(0, str(path.parent))
    module = importlib.import_module(path.stem)
    cfg = {**TINY, "method": "fraction-test", "data": _data(root, tmp_path)}
    before, base_before = from_dict(cfg).key(), from_dict(cfg).base_key()
    path.write_text(PLUGIN % {"COUNT_EXTRA": " + 0  # counted alike, written otherwise"})
    importlib.reload(module)
    after = from_dict(cfg)
    assert after.key() != before and after.base_key() != base_before  # the source shapes task 0 too


def test_the_documented_source_runs_as_written(plugin, tmp_path):
    """docs/your-data.md's source, copied from the page into a module: it registers, counts and loads the list."""
    import re
    from pathlib import Path

    from dynnn_lib import DataConfig
    from dynnn_lib.core.registry import import_modules
    from dynnn_lib.data import load_stream, stream_length

    _, root = plugin
    page = (Path(__file__).resolve().parents[1] / "docs" / "your-data.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", page, flags=re.S) if b.startswith("# mysource.py"))
    (tmp_path / "mysource_doc_test.py").write_text(code)
    try:
        import_modules([str(tmp_path / "mysource_doc_test.py")])
        data = DataConfig(source="csv-list", root=str(root), image_size=16, load_workers=0,
                          cache_dir=str(tmp_path / "cache"), file="list.csv")
        assert stream_length(data) == 3
        stream = load_stream(data)
        assert stream.task_names == ["day 0", "day 1", "day 2"] and stream.class_names == ["cat", "dog"]
        assert stream.tasks[2].train_x.shape == (6, 3, 16, 16) and stream.tasks[2].test_y.tolist() == [0, 0, 0, 1, 1, 1]
    finally:
        _SOURCES.pop("csv-list", None)
        sys.modules.pop("mysource_doc_test", None)
