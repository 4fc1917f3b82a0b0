"""Paired comparisons over seeds, and the verdict words claims are judged with.

Two configurations run with the same seeds give one value each per seed; :func:`paired` compares them seed by
seed (the differences carry the seed's shared luck - same task-0 training, same data order - out of the
comparison) and returns the mean difference with its 95 % Student-t confidence interval.  A claim "a > b" is

* ``held``         - the whole interval lies above 0 (above ``margin``, see :func:`paired`);
* ``not held``     - the whole interval lies below it;
* ``inconclusive`` - the interval contains it (with one seed the interval is infinite: always inconclusive).

:func:`combine_verdicts` joins the verdicts of one claim on several benchmark instances: a claim counts as held
only where it held on every instance.  No scipy: the t quantiles are a small table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from dynnn_lib.core.errors import ConfigError

HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"
VERDICTS = (HELD, NOT_HELD, INCONCLUSIVE)

# two-sided 95 % quantiles of Student's t (the 0.975 quantile) for 1..30 degrees of freedom; the normal's 1.96 beyond
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
       2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
       2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t95(df: int) -> float:
    """The two-sided 95 % quantile of Student's t with `df` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ConfigError(f"t quantile for df={df}: needs at least 1 degree of freedom (2 paired values)")
    return T95[df - 1] if df <= len(T95) else 1.96


def _finite(values: Iterable[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    if not out:
        raise ConfigError(f"{what} is empty; give at least one value per seed")
    if not all(math.isfinite(v) for v in out):
        raise ConfigError(f"{what} holds NaN or infinite values {out}; every seed's run must be complete")
    return out


def mean_sd(values: Iterable[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with ddof=1); the sd is 0.0 for a single value."""
    v = _finite(values, "mean_sd: values")
    m = sum(v) / len(v)
    if len(v) == 1:
        return m, 0.0
    return m, math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))


@dataclass(frozen=True)
class Paired:
    """The per-seed differences a - b: their mean, its 95 % confidence interval, and the verdict on "a - b > margin"."""

    mean_diff: float
    ci_low: float
    ci_high: float
    n: int
    margin: float = 0.0

    @property
    def verdict(self) -> str:
        if self.ci_low > self.margin:
            return HELD
        if self.ci_high < self.margin:
            return NOT_HELD
        return INCONCLUSIVE

    def to_dict(self) -> dict:
        """JSON-ready (an infinite bound, from a single seed, becomes None)."""
        fin = lambda x: x if math.isfinite(x) else None  # noqa: E731
        return {"mean_diff": self.mean_diff, "ci_low": fin(self.ci_low), "ci_high": fin(self.ci_high), "n": self.n,
                "margin": self.margin, "verdict": self.verdict}


def paired(a: Sequence[float], b: Sequence[float], margin: float = 0.0) -> Paired:
    """Compare per-seed values a[i] and b[i] (same seed i on both sides) for the claim "a > b + margin".

    The interval is mean(d) ± t95(n - 1) * sd(d) / sqrt(n) over the differences d = a - b; with n = 1 it is
    (-inf, +inf), so one seed never decides a claim.
    """
    if len(a) != len(b):
        raise ConfigError(f"paired comparison of {len(a)} against {len(b)} values: both sides need one value per "
                          "seed, for the same seeds")
    d = [x - y for x, y in zip(_finite(a, "paired: a"), _finite(b, "paired: b"))]
    mean, sd = mean_sd(d)
    if len(d) == 1:
        return Paired(mean, -math.inf, math.inf, 1, margin)
    half = t95(len(d) - 1) * sd / math.sqrt(len(d))
    return Paired(mean, mean - half, mean + half, len(d), margin)


def combine_verdicts(verdicts: Iterable[str]) -> str:
    """One claim judged on several benchmark instances: held only if held on every instance, not held only if
    not held on every instance, otherwise inconclusive."""
    vs = list(verdicts)
    if not vs:
        raise ConfigError("combine_verdicts needs the verdict of at least one benchmark instance")
    bad = [v for v in vs if v not in VERDICTS]
    if bad:
        raise ConfigError(f"unknown verdict {bad[0]!r}; verdicts are: {', '.join(VERDICTS)}")
    if all(v == HELD for v in vs):
        return HELD
    if all(v == NOT_HELD for v in vs):
        return NOT_HELD
    return INCONCLUSIVE


def all_of(verdicts: Iterable[str]) -> str:
    """A conjunction of sub-claims on one instance: held if every one held, not held if any was not held."""
    vs = list(verdicts)
    if vs and all(v == HELD for v in vs):
        return HELD
    return NOT_HELD if NOT_HELD in vs else INCONCLUSIVE
