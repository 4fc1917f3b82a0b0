"""Paired comparisons: the t tables, the interval, the four verdicts with a margin, the instances a claim needs, the
instance as the unit; the sample std in aggregate."""
import math

import numpy as np
import pytest

from dynnn_lib import aggregate
from dynnn_lib.core.errors import ConfigError
from dynnn_lib.evaluation.stats import (EQUIVALENT, HELD, INCONCLUSIVE, MARGIN, NOT_HELD, VERDICTS, all_of, mean_sd,
                                        over_instances, paired, t90, t95)


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
    assert paired(router, oracle, -0.02).verdict == HELD               # ...but by less than 2 points (offset)


def test_paired_rejects_unpaired_or_missing_values():
    with pytest.raises(ConfigError, match="same units"):
        paired([1.0, 2.0], [1.0])
    with pytest.raises(ConfigError, match="NaN"):
        paired([1.0, float("nan")], [1.0, 2.0])


def test_t90_is_the_one_sided_table():
    assert t90(1) == pytest.approx(6.314) and t90(7) == pytest.approx(1.895) and t90(31) == pytest.approx(1.645)


def test_equivalence_inside_the_margin_and_its_absence_outside():
    """TOST: the 90 % interval inside ±margin is a finding; a tiny real difference is held first; a noisy one is
    inconclusive and says how many units it would need."""
    base = np.array([0.90, 0.85, 0.93, 0.88, 0.91, 0.87, 0.92, 0.89])
    noise = np.array([0.001, -0.002, 0.0015, -0.001, 0.002, -0.0015, 0.0005, -0.0005])
    same = paired(base + noise, base, margin=MARGIN)
    assert same.verdict == EQUIVALENT and same.equivalent and same.needed is None
    assert paired(base + noise, base).verdict == INCONCLUSIVE  # without a margin: absence of evidence only
    tiny = paired(base + 0.003 + noise / 10, base, margin=MARGIN)
    assert tiny.verdict == HELD and tiny.equivalent  # real and smaller than the margin: held is reported first
    wide = paired(base + 0.02 * np.array([1, -1, 1, -1, 1, -1, 1, -0.5]), base, margin=MARGIN)
    assert wide.verdict == INCONCLUSIVE and not wide.equivalent
    n = wide.needed
    assert n is not None and n > wide.n
    # at the needed size, the same spread and mean decide the claim (the power calculation's promise, on average)
    d = wide.mean_diff
    sd = wide.sd
    half = t95(n - 1) * sd / math.sqrt(n)
    assert abs(d) > half or abs(d) + t90(n - 1) * sd / math.sqrt(n) < MARGIN
    with pytest.raises(ConfigError, match="positive"):
        paired([1.0, 2.0], [1.0, 1.5], margin=0.0)
    assert set(VERDICTS) == {"held", "not held", "equivalent", "inconclusive"}
    assert wide.describe().endswith(f"inconclusive, needs ~{n}") and same.format().startswith("+0.")


def test_the_instance_is_the_unit():
    """Seeds are averaged within an instance; the interval is over instances (K - 1 degrees of freedom)."""
    a = {1: [0.90, 0.92], 2: [0.80, 0.82], 3: [0.85, 0.87]}
    b = {1: [0.89, 0.89], 2: [0.79, 0.79], 3: [0.84, 0.84], 9: [0.5]}  # instance 9 has no pair: left out
    p = over_instances(a, b)
    assert p.n == 3 and p.mean_diff == pytest.approx(0.02)
    assert p.ci_low == pytest.approx(0.02) and p.verdict == HELD  # the same difference on every instance
    with pytest.raises(ConfigError, match="share no generated instance"):
        over_instances({1: [0.9]}, {2: [0.8]})


def test_all_of_a_chain():
    assert all_of([HELD, HELD]) == HELD
    assert all_of([HELD, NOT_HELD]) == NOT_HELD
    assert all_of([HELD, EQUIVALENT]) == INCONCLUSIVE


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
