"""Every extension is one file, found by discovery: a metric, a head rule and a method written in files of a
temporary folder (the metric and the rule are docs/writing-a-method.md's examples, copied from the page as written),
imported with ``--import`` and nothing edited elsewhere, show up in ``dynnn methods``, ``dynnn run``, ``dynnn show
--rule``, the runs table and the explorer's controls; a stored run is re-scored under the plugin rule without
training, and neither the metric nor the rule changes a run key."""
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny
from dynnn_lib.cli import main
from dynnn_lib.core import registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-a-method.md"

METHOD = '''
"""A method of one's own: finetune at half the loss."""
from dataclasses import dataclass

import torch.nn.functional as F

from dynnn_lib.methods import Method, register


@register
class HalfStep(Method):
    """Finetune at half the loss."""

    name = "halfstep-test"

    @dataclass(frozen=True)
    class Params:
        scale: float = 0.5

    def train_task(self, ctx):
        loss = lambda out, batch: {"ce": self.params.scale * F.cross_entropy(out, batch.y)}  # noqa: E731
        return ctx.log("halfstep", ctx.fit(ctx.network(), loss, ctx.samples()))
'''


def _doc_example(first_line: str) -> str:
    """The page's python block that starts with `first_line` (``# mymetric.py``), as written."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    return next(b for b in blocks if b.startswith(first_line))


@pytest.fixture
def extensions(tmp_path):
    """Three files in tmp_path/ext: the page's metric and head rule, and a method; unregistered afterwards."""
    folder = tmp_path / "ext"
    folder.mkdir()
    files = {"metric": folder / "ext_metric_test.py", "rule": folder / "ext_rule_test.py",
             "method": folder / "ext_method_test.py"}
    files["metric"].write_text(_doc_example("# mymetric.py"))
    files["rule"].write_text(_doc_example("# myrule.py"))
    files["method"].write_text(METHOD)
    yield files
    registry.METRICS.table.pop("worst_final", None)
    registry.HEAD_RULES.table.pop("min_entropy", None)
    registry.METHODS.table.pop("halfstep-test", None)
    for f in files.values():
        sys.modules.pop(f.stem, None)


def _run(runs_dir: Path, method: str, *extra: str) -> list[str]:
    return ["run", "--runs-dir", str(runs_dir), "--preset", "tiny", "--no-progress", "--jobs", "1", "--seeds", "1",
            "--method", method, "--json", *extra]


def _imports(files: dict[str, Path]) -> list[str]:
    return [a for f in files.values() for a in ("--import", str(f))]


def test_a_metric_a_rule_and_a_method_from_files_show_up_everywhere(extensions, tmp_path, capsys):
    from dynnn_lib.core import fingerprint
    from dynnn_lib.engine.runs import runs_table
    from dynnn_lib.evaluation.outputs import Outputs

    runs = tmp_path / "runs"
    shared_before = fingerprint.shared_modules()
    assert main(_run(runs, "finetune")) == 0  # trained before any plugin: its result stores the built-in rules only
    stored = json.loads(capsys.readouterr().out)
    key = stored["keys"][0]
    result_file = runs / key / "result.json"
    assert "min_entropy" not in json.loads(result_file.read_text())["matrices"]
    written, listing = result_file.stat().st_mtime_ns, sorted(str(p) for p in runs.rglob("*"))

    assert main(["show", key, "--runs-dir", str(runs), "--rule", "min_entropy"]) == 2  # not imported: one line
    err = capsys.readouterr().err.strip()
    assert "head_rule='min_entropy' is not registered" in err and "--import" in err and len(err.splitlines()) == 1

    assert main(["methods", *_imports(extensions)]) == 0
    listed = capsys.readouterr().out
    assert "halfstep-test" in listed
    assert "  min_entropy  Per image, the head whose softmax is most certain (lowest entropy) decides." in listed
    assert "  worst_final      worst task: The lowest accuracy of the last row" in listed

    # dynnn show --rule: the stored run scored under the plugin rule from its outputs.pt, nothing trained
    assert main(["show", key, "--runs-dir", str(runs), "--rule", "min_entropy", "--no-color"]) == 0
    out = capsys.readouterr().out
    assert "head rule min_entropy" in out and "worst task:" in out  # each metric printed by its label
    assert result_file.stat().st_mtime_ns == written and sorted(str(p) for p in runs.rglob("*")) == listing
    import torch

    expected = Outputs.from_state(torch.load(runs / key / "outputs.pt", weights_only=False)).score("min_entropy")
    from dynnn_lib.engine.results import load_result

    rescored = load_result(result_file).with_rule("min_entropy")
    np.testing.assert_array_equal(rescored.matrix, expected)

    # dynnn run: the plugin method under the plugin rule; the plugin metric beside the built-ins
    assert main(_run(runs, "halfstep-test", "--head-rule", "min_entropy")) == 0
    ran = json.loads(capsys.readouterr().out)
    assert ran["config"]["method"] == "halfstep-test" and ran["config"]["head_rule"] == "min_entropy"
    assert "worst_final" in ran["metrics"] and "overall" in ran["metrics"]
    assert "min_entropy" in json.loads((runs / ran["keys"][0] / "result.json").read_text())["matrices"]

    # the runs table: the metric's column, its values the metric of each run's matrix
    df = runs_table(runs).set_index("run")
    assert "worst_final" in df.columns
    assert df.loc[key, "worst_final"] == pytest.approx(float(np.nanmin(load_result(result_file).matrix[-1])))
    assert main(["runs", "--runs-dir", str(runs), "--rule", "min_entropy"]) == 0
    assert "worst_final" in capsys.readouterr().out

    # the explorer's controls
    from dynnn_lib.workbench.explorer import control_options

    offered = control_options()
    assert "halfstep-test" in offered["method"] and "min_entropy" in offered["head_rule"]
    assert "worst_final" in offered["metric"]

    # keys: a metric or a rule retrains nothing
    assert fingerprint.shared_modules() == shared_before
    assert main(_run(runs, "finetune")) == 0 and json.loads(capsys.readouterr().out)["keys"] == [key]


def test_scoring_is_outside_the_training_keys():
    """Training imports the built-in rules (its decisions use them) but no metric: editing a metric retrains
    nothing, and the rules a method may decide with are the built-in label-free ones only."""
    from dynnn_lib.core import fingerprint
    from dynnn_lib.evaluation.routing import LABEL_FREE_RULES

    shared = fingerprint.shared_modules()
    assert "evaluation/routing.py" in shared and "evaluation/metrics.py" not in shared
    assert set(LABEL_FREE_RULES) == {"router", "mean_prob", "max_conf", "last"}


def test_a_plugin_metric_or_rule_changes_no_run_key(extensions):
    """Importing the files (as --import does) registers them and leaves every key as it was, prefixes included;
    a method may not decide with the plugin rule."""
    from dynnn_lib.core.errors import ConfigError
    from dynnn_lib.core.registry import import_modules

    before = [(c.key(), c.base_key()) for c in (tiny(), tiny(method="kd", head_rule="oracle"))]
    import_modules([str(extensions["metric"]), str(extensions["rule"])])
    assert "worst_final" in registry.metric_names() and "min_entropy" in registry.head_rule_names()
    assert [(c.key(), c.base_key()) for c in (tiny(), tiny(method="kd", head_rule="oracle"))] == before
    assert tiny(head_rule="min_entropy").key() == tiny().key()  # a head rule is evaluation only
    with pytest.raises(ConfigError, match="known_rule='min_entropy' is not valid"):
        tiny(method="kd", method_params={"known_rule": "min_entropy"})


def test_the_glossary_names_and_defines_the_metrics_from_the_registry():
    """One list of metric names: the glossary's terms are the registered built-ins' labels and its definitions their
    docstrings; a plugin's metric is named by its own label in tables and stays out of the glossary."""
    from dynnn_lib.evaluation.metrics import builtin_metrics, get_metric, metric_label
    from dynnn_lib.reports.figures import figure_label
    from dynnn_lib.reports.glossary import glossary_block, metric_terms

    terms = metric_terms()
    assert tuple(terms) == builtin_metrics() == registry.metric_names()[:6]
    assert terms == {k: get_metric(k).label for k in builtin_metrics()}
    assert (terms["overall"], terms["bwt"], terms["fwt"]) == ("square", "BWT (all pairs)", "upper triangle")
    assert figure_label("overall") == "square (all N²)" and figure_label("bwt") == "BWT (all pairs)"
    block = glossary_block()
    for k, label in terms.items():
        assert f"**{label}** | {' '.join(get_metric(k).definition.split())[:40]}" in block
    assert metric_label("not_registered_now") == "not_registered_now"


def test_metric_and_rule_declarations():
    """A metric's definition is its docstring and its label is declared once; what it reads is checked; an
    unknown metric or rule is one line naming the registered ones."""
    from dynnn_lib.core.errors import ConfigError
    from dynnn_lib.evaluation.metrics import get_metric, metric
    from dynnn_lib.evaluation.routing import get_rule

    bwt = get_metric("bwt")
    assert bwt.label == "BWT (all pairs)" and bwt.reads == "matrix" and bwt.builtin
    assert bwt.definition.startswith("Mean of R[i, j]")
    assert registry.metric_names()[:6] == ("average_accuracy", "bwt", "fwt", "overall", "final", "diagonal")
    assert registry.head_rule_names()[:5] == ("router", "oracle", "mean_prob", "max_conf", "last")
    assert get_rule("oracle").needs_label and get_rule("router").reads_router and not get_rule("last").reads_router
    with pytest.raises(ConfigError, match="metric reads='weights' is not valid; choose one of: matrix, outputs, logs"):
        metric(reads="weights")
    for lookup, what in ((get_metric, "metric"), (get_rule, "head_rule")):
        with pytest.raises(ConfigError) as e:
            lookup("nope")
        assert str(e.value).startswith(f"{what}='nope' is not registered; choose one of: ") and "\n" not in str(e.value)


def test_metrics_reading_the_logs_or_the_outputs_score_stored_runs(tmp_path):
    """A metric may read a run's per-task logs or its stored outputs (under the run's head rule): the runs table
    scores every stored run with it, and a result with no outputs.pt gets NaN, not an error."""
    from dynnn_lib.engine.runner import run
    from dynnn_lib.engine.runs import runs_table
    from dynnn_lib.evaluation.metrics import metric

    @metric("tasks logged", reads="logs")
    def logged_tasks_test(logs) -> float:
        """How many tasks the run logged."""
        return float(len(logs))

    @metric("routed right", reads="outputs")
    def last_routing_test(outputs, rule) -> float:
        """Mean routing accuracy after the last task (the rule is given, unused here)."""
        return float(np.nanmean(outputs.routing()[-1]))

    try:
        res = run(tiny(), tmp_path / "runs")
        row = runs_table(tmp_path / "runs").iloc[0]
        assert row["logged_tasks_test"] == 3.0
        assert row["last_routing_test"] == pytest.approx(float(np.nanmean(res.routing[-1])))
        (res.path.parent / "outputs.pt").unlink()
        assert np.isnan(runs_table(tmp_path / "runs").iloc[0]["last_routing_test"])
    finally:
        registry.METRICS.table.pop("logged_tasks_test", None)
        registry.METRICS.table.pop("last_routing_test", None)


def test_built_in_methods_are_found_by_listing_their_folder():
    """No list of method names to keep in step: methods/__init__.py imports no built-in method by name (each
    module of the folder is imported by listing it), and every class a module of the folder registers is found."""
    import ast
    import inspect

    import dynnn_lib.methods as methods
    from dynnn_lib.methods import Method, available_methods

    folder = Path(methods.__file__).parent
    named = {a.name for node in ast.walk(ast.parse(Path(methods.__file__).read_text()))
             if isinstance(node, ast.ImportFrom) and node.module == "dynnn_lib.methods" for a in node.names}
    assert not named & {p.stem for p in folder.glob("*.py")} - {"base", "training"}
    defined = {cls.name for mod in list(sys.modules.values())
               if getattr(mod, "__file__", None) and Path(mod.__file__).is_relative_to(folder)
               for _, cls in inspect.getmembers(mod, inspect.isclass)
               if issubclass(cls, Method) and cls.__module__ == mod.__name__ and cls.name}
    assert defined and defined <= set(available_methods())
    assert {"finetune", "expand", "kd", "combined", "lwf", "ewc", "replay", "joint"} <= defined
