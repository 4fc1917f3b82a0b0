"""Every notebook executes headless with tiny parameters; results reach the report; bad parameters fail."""
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from dynnn_lib import ConfigError, DynnnError
from dynnn_lib.workbench.batch import build_report, notebooks, plan, run_all
from dynnn_lib.workbench.notebook import load_notebook, parameters_of, read_records, run_notebook

ROOT = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((ROOT / "params" / "tiny.yaml").read_text())

pytestmark = pytest.mark.notebooks


def test_each_notebook_has_one_parameters_cell_of_literals():
    books = notebooks()
    assert [p.stem for p in books] == ["00_data", "01_finetune", "02_expansion", "03_knowledge_distillation",
                                       "04_combined", "05_lr_trick", "06_explorer", "07_your_method",
                                       "08_calibration", "09_schedules", "10_your_data"]
    for p in books:
        params = parameters_of(load_notebook(p))
        assert params, p
        if p.stem != "00_data":
            assert "runs_dir" in params and "interactive" in params


def test_batch_executes_every_notebook_and_builds_the_report(tmp_path):
    params = {k: dict(v) for k, v in TINY.items()}
    params["all"]["runs_dir"] = str(tmp_path / "runs")
    report = run_all(params, tmp_path / "reports", jobs=2)
    executed = sorted(p.stem for p in (tmp_path / "reports" / "executed").glob("*.ipynb"))
    assert executed == [p.stem for p in notebooks()]
    rec = read_records(tmp_path / "reports" / "executed" / "05_lr_trick.json")["variants"]
    assert len(rec) == 5 and np.array(rec["finetune"]["matrix_mean"]).shape == (3, 3)
    html = report.read_text()
    assert "plotly" in html and html.count("js-plotly-plot") + html.count("plotly-graph-div") >= 5
    assert "fidelity.html" not in html  # linked only when the fidelity report is there
    (tmp_path / "reports" / "fidelity.html").write_text("<html></html>")
    assert "href='fidelity.html'" in build_report(tmp_path / "reports").read_text()
    summary = (tmp_path / "reports" / "summary.md").read_text()
    # the paper's square beside ours; the same runs under several names and notebooks are listed once
    assert re.search(r"^\| finetune \| 01_finetune, [^|]*05_lr_trick[^|]* \| [^|]+ \| 93\.84 \|", summary, flags=re.M)
    # (notebook 10 runs finetune on another data source: other runs, a row of their own)
    assert len(re.findall(r"^\| finetune \| [^|]*01_finetune", summary, flags=re.M)) == 1


def test_unknown_notebook_parameter_fails_instead_of_warning(tmp_path):
    with pytest.raises(ConfigError, match="01_finetune.py has no parameter typo_param; its parameters are: seeds"):
        run_notebook(ROOT / "notebooks" / "01_finetune.py", tmp_path / "out.ipynb", {"typo_param": 1})
    with pytest.raises(ConfigError, match="unknown notebook"):
        plan({"99_nothing": {}})


def test_a_failing_notebook_names_the_notebook_and_the_cell(tmp_path):
    with pytest.raises(DynnnError, match=r"01_finetune.py failed in cell \d+ \(ConfigError: base_epochs=0 must be a positive integer"):
        run_notebook(ROOT / "notebooks" / "01_finetune.py", tmp_path / "out.ipynb",
                     {**TINY["all"], "runs_dir": str(tmp_path / "runs"), "base": {**TINY["all"]["base"], "base_epochs": 0}})
    assert (tmp_path / "out.failed.ipynb").exists() and not (tmp_path / "out.ipynb").exists()


def test_report_without_results_says_so(tmp_path):
    (tmp_path / "executed").mkdir()
    with pytest.raises(DynnnError, match="no recorded results"):
        build_report(tmp_path)


def test_nbval_references_match_the_notebooks():
    """tests/nbval/*.ipynb are the notebooks + tiny parameters; editing a notebook without them fails here."""
    from dynnn_lib.workbench.nbval_refs import stale

    out_of_date = stale()
    assert not out_of_date, f"tests/nbval references are stale for {out_of_date}: run `make nbval-refs`"


def test_stale_reference_is_detected(tmp_path):
    import shutil

    from dynnn_lib.workbench.nbval_refs import DEFAULT_OUT, stale

    for p in DEFAULT_OUT.glob("*.ipynb"):
        shutil.copy(p, tmp_path / p.name)
    assert stale(out_dir=tmp_path) == []
    (tmp_path / "04_combined.ipynb").unlink()
    ref = tmp_path / "01_finetune.ipynb"
    ref.write_text(ref.read_text().replace("print(result.summary())", "print(result.table())"))
    assert stale(out_dir=tmp_path) == ["01_finetune", "04_combined"]


def _nbval(path: Path) -> int:
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
           str(path)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).returncode


def test_nbval_sanitizes_accuracies_but_catches_changed_output(tmp_path):
    """Other accuracies in the reference still pass (sanitized); a changed table structure fails."""
    ref = (ROOT / "tests" / "nbval" / "01_finetune.ipynb").read_text()
    assert re.search(r"\d+\.\d+ ± \d+\.\d+", ref)
    numbers = tmp_path / "numbers" / "01_finetune.ipynb"
    numbers.parent.mkdir()
    numbers.write_text(re.sub(r"\d+\.\d+ ± \d+\.\d+", "99.99 ± 9.99", ref))
    assert _nbval(numbers) == 0
    changed = tmp_path / "changed" / "01_finetune.ipynb"
    changed.parent.mkdir()
    changed.write_text(ref.replace("| finetune | 93.84 |", "| finetune | 12.34 |"))
    assert _nbval(changed) == 1
