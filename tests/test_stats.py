"""Paired comparisons over seeds: the t table, the interval, the verdicts; the sample std in aggregate."""
import math

import numpy as np
import pytest

from dynnn_lib import aggregate
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.evaluation.stats import HELD, INCONCLUSIVE, NOT_HELD, VERDICTS, combine_verdicts, mean_sd, paired, t95


def test_t_quantiles_match_the_published_table():
    assert t95(1) == pytest.approx(12.706)
    assert t95(4) == pytest.approx(2.776)
    assert t95(9) == pytest.approx(2.262)
    assert t95(30) == pytest.approx(2.042)
    assert t95(31) == t95(1000) == pytest.approx(1.96)
    with pytest.raises(ConfigError):
        t95(0)


def test_interval_by_hand():
    # differences 1, 2, 3: mean 2, sample sd 1, half-width t(2) * 1 / sqrt(3)
    p = paired([3.0, 5.0, 7.0], [2.0, 3.0, 4.0])
    half = 4.303 / math.sqrt(3)
    assert (p.n, p.mean_diff) == (3, pytest.approx(2.0))
    assert (p.ci_low, p.ci_high) == (pytest.approx(2 - half), pytest.approx(2 + half))
    assert p.verdict == INCONCLUSIVE  # 2 - 2.48 < 0: three noisy seeds are not enough


def test_verdicts_on_hand_made_numbers():
    rng = np.random.default_rng(0)
    b = 0.80 + 0.01 * rng.standard_normal(5)
    assert paired(b + 0.05 + 0.002 * rng.standard_normal(5), b).verdict == HELD          # clearly better
    assert paired(b - 0.05 + 0.002 * rng.standard_normal(5), b).verdict == NOT_HELD      # clearly worse
    assert paired(b + np.array([0.05, -0.04, 0.03, -0.05, 0.02]), b).verdict == INCONCLUSIVE  # noise
    # pairing: a constant shift is decided even though each side varies much more than the shift
    spread = np.array([0.5, 0.7, 0.9, 0.6, 0.8])
    assert paired(spread + 0.01, spread).verdict == HELD
    # one seed: infinite interval, never decided
    one = paired([0.99], [0.10])
    assert one.n == 1 and one.ci_low == -math.inf and one.ci_high == math.inf and one.verdict == INCONCLUSIVE
    assert one.to_dict()["ci_low"] is None


def test_margin_judges_within_k_points():
    router, oracle = [0.90, 0.91, 0.92, 0.90], [0.91, 0.92, 0.93, 0.91]
    assert paired(router, oracle).verdict == NOT_HELD                  # the oracle is better...
    assert paired(router, oracle, margin=-0.02).verdict == HELD        # ...but by less than 2 points


def test_paired_rejects_unpaired_or_missing_values():
    with pytest.raises(ConfigError, match="same seeds"):
        paired([1.0, 2.0], [1.0])
    with pytest.raises(ConfigError, match="NaN"):
        paired([1.0, float("nan")], [1.0, 2.0])


def test_combine_verdicts_across_instances():
    assert combine_verdicts([HELD, HELD]) == HELD
    assert combine_verdicts([NOT_HELD, NOT_HELD]) == NOT_HELD
    assert combine_verdicts([HELD, INCONCLUSIVE]) == INCONCLUSIVE
    assert combine_verdicts([HELD, NOT_HELD]) == INCONCLUSIVE
    assert combine_verdicts([HELD]) == HELD
    assert set(VERDICTS) == {"held", "not held", "inconclusive"}
    with pytest.raises(ConfigError):
        combine_verdicts([])
    with pytest.raises(ConfigError, match="unknown verdict"):
        combine_verdicts(["yes"])


def test_mean_sd_is_the_sample_std():
    assert mean_sd([1.0, 2.0, 3.0, 4.0]) == (pytest.approx(2.5), pytest.approx(np.std([1, 2, 3, 4], ddof=1)))
    assert mean_sd([0.7]) == (0.7, 0.0)


def test_aggregate_uses_the_sample_std():
    a = np.full((3, 3), 0.5)
    agg = aggregate([a, a + 0.1, a + 0.2])
    np.testing.assert_allclose(agg["matrix_std"], np.full((3, 3), 0.1))  # ddof=1: sqrt(0.02 / 2)
    mean, sd = agg["metrics"]["overall"]
    assert mean == pytest.approx(0.6) and sd == pytest.approx(0.1)
    single = aggregate([a])
    assert single["metrics"]["overall"][1] == 0.0 and not single["matrix_std"].any()
