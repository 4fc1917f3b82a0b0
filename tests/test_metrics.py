import numpy as np
import pytest

from dynnn_lib import aggregate, summarize
from dynnn_lib.evaluation import metrics

# A hand-worked 3x3 matrix.
R = np.array([[0.9, 0.2, 0.1],
              [0.6, 0.8, 0.3],
              [0.7, 0.5, 1.0]])


def test_metrics_match_hand_computation():
    m = summarize(R)
    # lower triangle incl. diagonal: 0.9 .6 .8 .7 .5 1.0 -> 4.5 / 6
    assert m["average_accuracy"] == pytest.approx(0.75)
    # (R10-R00) + (R20-R00) + (R21-R11) = -0.3 - 0.2 - 0.3 = -0.8, over 3 pairs
    assert m["bwt"] == pytest.approx(-0.8 / 3)
    # upper triangle: .2 .1 .3
    assert m["fwt"] == pytest.approx(0.2)
    assert m["overall"] == pytest.approx(5.1 / 9)
    assert m["final"] == pytest.approx(2.2 / 3)
    assert m["diagonal"] == pytest.approx(0.9)


def test_seed_finetune_last_row_from_the_reference():
    # the paper's finetune final row (percent) has mean 95.53 per method_and_dataset.md
    last = [98.54, 96.09, 99.53, 92.72, 92.69, 93.54, 95.57, 91.31, 99.82]
    r = np.eye(9)
    r[-1] = last
    assert metrics.final(r) == pytest.approx(95.53, abs=0.01)


def test_aggregate_mean_and_sample_std_over_seeds():
    a, b = R, R + 0.1
    agg = aggregate([a, b])
    assert agg["n_seeds"] == 2
    np.testing.assert_allclose(agg["matrix_mean"], R + 0.05)
    np.testing.assert_allclose(agg["matrix_std"], np.full((3, 3), 0.05 * np.sqrt(2)))  # ddof=1
    mean, std = agg["metrics"]["overall"]
    assert mean == pytest.approx(5.1 / 9 + 0.05) and std == pytest.approx(0.05 * np.sqrt(2))


def test_non_square_matrix_is_rejected():
    with pytest.raises(ValueError, match="square"):
        summarize(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        aggregate([])


def test_single_task_has_zero_transfer():
    assert metrics.bwt([[0.5]]) == 0.0 and metrics.fwt([[0.5]]) == 0.0
