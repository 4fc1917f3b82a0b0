"""The fidelity report: the seed's tables transcribed right, the claims judged right, the report written."""
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import TINY_DATA
from dynnn_lib import fidelity
from dynnn_lib.metrics import average_accuracy, diagonal, final
from dynnn_lib.reproduce import VariantSummary

BASE = {"base_epochs": 1, "inc_epochs": 1, "base_milestones": [1], "inc_milestones": [1], "pretrained": False,
        "data": {**TINY_DATA, "n_tasks": 4}}  # V2' expands at task 3


def test_seed_tables_give_the_numbers_derived_in_the_reference():
    """method_and_dataset.md: finetune lower mean 92.65, final row 95.53, BWT -4.87; V2' 96.90, 97.54, +0.34, 97.24."""
    ft, v2 = fidelity.SEED_FINETUNE[0], fidelity.SEED_DYNAMICNN[0]
    assert average_accuracy(ft) * 100 == pytest.approx(92.65, abs=0.01)
    assert final(ft) * 100 == pytest.approx(95.53, abs=0.01)
    assert fidelity.bwt_final(ft) * 100 == pytest.approx(-4.87, abs=0.01)
    assert diagonal(ft) * 100 == pytest.approx(99.87, abs=0.01)
    assert average_accuracy(v2) * 100 == pytest.approx(96.90, abs=0.01)
    assert final(v2) * 100 == pytest.approx(97.54, abs=0.01)
    assert fidelity.bwt_final(v2) * 100 == pytest.approx(0.34, abs=0.01)
    assert diagonal(v2) * 100 == pytest.approx(97.24, abs=0.01)
    assert np.isnan(ft[0, 1]) and not np.isnan(ft[8, 0])
    # the seed's finetune forgets most after tasks 1, 3 and 5: where it chose to expand
    assert fidelity.worst_tasks(ft) == [1, 3, 5]


def _summary(name, matrices, seed_offset=0):
    results = [SimpleNamespace(matrix=np.array(m, dtype=float), config=SimpleNamespace(seed=i + seed_offset),
                               task_names=[f"task {j}" for j in range(len(m))]) for i, m in enumerate(matrices)]
    return VariantSummary(name, results)


def test_claims_are_judged_from_the_numbers():
    n = 9
    base = np.full((n, n), 0.9)
    ft = base.copy()
    for t, loss in ((1, 0.3), (3, 0.4), (5, 0.2), (7, 0.05)):
        ft[t, :t] -= loss  # forgetting right after tasks 1, 3, 5 (and a little after 7)
    good = {"finetune": _summary("finetune", [ft]),
            "DynamicNN (no expand)": _summary("DynamicNN (no expand)", [base + 0.01]),
            "DynamicNN (expand@1)": _summary("DynamicNN (expand@1)", [base + 0.02]),
            "DynamicNN (no expand) + LR trick": _summary("DynamicNN (no expand) + LR trick", [base + 0.03]),
            "DynamicNN (expand@1) + LR trick": _summary("DynamicNN (expand@1) + LR trick", [base + 0.04])}
    v2 = base.copy()
    np.fill_diagonal(v2, 0.85)
    verdicts = {c.claim: c.held for c in fidelity.claims(good, _summary("v2", [v2]))}
    assert verdicts["ordering: finetune < no expand < expand@1 < no expand + LR trick (square)"] == "yes"
    assert verdicts["finetune forgets most right after the dissimilar tasks 1, 3, 5 (3 largest drops)"] == "yes"
    assert verdicts["the frozen trunk costs plasticity (diagonal: V2' below finetune)"] == "yes"
    assert verdicts["DynamicNN V2' forgets less than finetune (BWT, final row)"] == "yes"

    bad = dict(good, **{"DynamicNN (expand@1)": _summary("DynamicNN (expand@1)", [base - 0.2])})
    verdicts = {c.claim: c.held for c in fidelity.claims(bad, _summary("v2", [v2]))}
    assert verdicts["ordering: finetune < no expand < expand@1 < no expand + LR trick (square)"] == "no (2 of 3 steps in order)"
    assert verdicts["expanding at task 1 helps (square, expand@1 vs no expand)"] == "no"


def test_report_from_real_runs(tmp_path):
    path = fidelity.build(BASE, seeds=1, jobs=1, runs_dir=tmp_path / "runs", out_dir=tmp_path / "reports", progress=False)
    md = path.read_text()
    assert "| lower-triangle mean | 92.65 |" in md and "| BWT (final row) | -4.87 |" in md
    assert "needs the 9-task stream (have 4)" in md
    page = (tmp_path / "reports" / "fidelity.html").read_text()
    assert page.count("plotly-graph-div") >= 4 and page.count("<script") >= 2
    assert len(list((tmp_path / "runs").iterdir())) == 6  # 5 poster variants + V2'
