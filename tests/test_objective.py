"""The objective's scale: the null models, fitted in-sample on the paper's own 54 entries (bars a stand-in must
beat), and skill = 1 - MSE / MSE(flat line), all recomputed here from the paper's table."""
import numpy as np
import pytest

from dynnn_lib.experiments import paper
from dynnn_lib.experiments.objective import calibration_error


def test_the_null_models_are_fitted_on_the_papers_own_54_entries():
    """The three null models, recomputed here from the paper's table: the flat line (the paper's off-diagonal mean
    90.84 below finetune's diagonal, each diagonal at its mean) 5.98, the row means 3.21, rows + columns (least
    squares: its residuals sum to 0 in every row and column, and it has no interaction) 2.98. Issue 43's 3.05 and
    2.81 are the row models with the 18 diagonal entries at their own values (the flat line so: 5.90)."""
    from dynnn_lib.experiments.objective import NULL_MODELS, flat_line, null_models, row_means, rows_and_columns

    ft, v2 = paper.PAPER_FINETUNE[0] * 100, paper.PAPER_DYNAMICNN[0] * 100
    off, eye = np.tril(np.ones((9, 9), bool), -1), np.eye(9, dtype=bool)
    sse_diagonals = np.sum((np.diag(ft) - np.diag(ft).mean()) ** 2) + np.sum((np.diag(v2) - np.diag(v2).mean()) ** 2)
    assert ft[off].mean() == pytest.approx(90.84, abs=0.005)
    flat, rows, both = (np.asarray(m()[0]) * 100 for m in (flat_line, row_means, rows_and_columns))
    for m in (flat, rows, both):  # the diagonals at their means; V2' predicted on its diagonal only
        assert np.allclose(m[eye], np.diag(ft).mean())
    assert all(np.allclose(np.diag(m()[1]) * 100, np.diag(v2).mean()) and np.isnan(m()[1][off]).all()
               for m in NULL_MODELS.values())
    assert np.allclose(flat[off], ft[off].mean())
    assert all(np.allclose(rows[i, :i], ft[i, :i].mean()) for i in range(1, 9))
    resid = np.where(off, ft - both, 0.0)
    assert np.allclose(resid.sum(0), 0) and np.allclose(resid.sum(1), 0)  # the normal equations of rows + columns
    assert np.allclose([both[i, j] - both[i, k] - both[l, j] + both[l, k]  # additive: no row x column interaction
                        for i, l in ((3, 8), (5, 7)) for j, k in ((0, 2), (1, 2))], 0)
    rmse = {name: calibration_error(*m()) for name, m in NULL_MODELS.items()}
    by_hand = {name: np.sqrt((np.sum((ft[off] - m[off]) ** 2) + sse_diagonals) / 54)
               for name, m in zip(NULL_MODELS, (flat, rows, both))}
    assert rmse == pytest.approx(by_hand)
    assert {name: round(v, 2) for name, v in rmse.items()} == {"flat line": 5.98, "row means": 3.21,
                                                                "rows + columns": 2.98}

    def exact_diagonals(model):
        f, v = (np.array(x) for x in model())
        f[eye], v[eye] = paper.PAPER_FINETUNE[0][eye], paper.PAPER_DYNAMICNN[0][eye]
        return calibration_error(f, v)

    assert [round(exact_diagonals(m), 2) for m in NULL_MODELS.values()] == [5.90, 3.05, 2.81]  # issue 43's reading
    doc = null_models()
    assert list(doc) == list(NULL_MODELS) and {k: v["rmse"] for k, v in doc.items()} == rmse
    assert doc["row means"]["definition"].startswith("Null model 2, the row means (10 numbers): each row's")


def test_skill_is_zero_for_a_flat_prediction_one_for_the_paper_and_negative_below_the_flat_line():
    """skill = 1 - MSE / MSE(flat line) on the objective's 54 entries."""
    from dynnn_lib.experiments.objective import flat_line, null_models, rows_and_columns, skill

    ft, v2 = flat_line()
    assert skill(calibration_error(ft, v2)) == 0.0
    by_hand_ft = np.full((9, 9), np.nanmean(paper.PAPER_FINETUNE[0][np.tril_indices(9, -1)]))
    np.fill_diagonal(by_hand_ft, np.mean(np.diag(paper.PAPER_FINETUNE[0])))
    by_hand_v2 = np.diag(np.full(9, np.mean(np.diag(paper.PAPER_DYNAMICNN[0]))))
    assert skill(calibration_error(by_hand_ft, by_hand_v2)) == pytest.approx(0.0, abs=1e-12)
    assert skill(calibration_error(paper.PAPER_FINETUNE[0], paper.PAPER_DYNAMICNN[0])) == 1.0
    worse = calibration_error(ft - 0.02, v2 - 0.02)  # the flat line 2 points low everywhere: MSE + 4
    assert skill(worse) == pytest.approx(-4 / calibration_error(ft, v2) ** 2) and skill(worse) < 0
    assert skill(calibration_error(*rows_and_columns())) == pytest.approx(null_models()["rows + columns"]["skill"])
    assert 0 < null_models()["row means"]["skill"] < null_models()["rows + columns"]["skill"] < 1
