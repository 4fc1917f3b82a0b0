"""Paired comparisons, their verdicts with a margin fixed in advance, and how many instances a claim needs.

Two configurations measured on the same units (seeds, or generated instances) give one value each per unit;
:func:`paired` compares them unit by unit (the differences carry the unit's shared luck out of the comparison) and
returns the mean difference with its 95 % Student-t interval. A claim "a > b" gets one of four verdicts:

* ``held``         - the whole 95 % interval lies above 0 (above ``offset`` for a claim "a > b + offset");
* ``not held``     - the whole 95 % interval lies below it;
* ``equivalent``   - the 90 % interval lies inside (-margin, +margin) around it: the two one-sided tests (TOST,
  Schuirmann 1987; Lakens 2017) at 5 % each, so "no difference that matters" is a finding, not a shrug;
* ``inconclusive`` - none of these; :attr:`Paired.needed` says how many units would decide it at the observed
  spread (a power calculation, 5 % level and 80 % power; never a reason to add units one at a time).

A claim about the method is a claim about data like the paper's, so its unit is the generated instance:
:func:`over_instances` averages each side over its seeds within an instance, then pairs the instances (K - 1
degrees of freedom, the interval covers the spread between instances: Bouthillier et al., "Accounting for
Variance in Machine Learning Benchmarks", MLSys 2021).
No scipy: the t quantiles are small tables.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from dynnn_lib.core.errors import ConfigError

HELD, NOT_HELD, EQUIVALENT, INCONCLUSIVE = "held", "not held", "equivalent", "inconclusive"
VERDICTS = (HELD, NOT_HELD, EQUIVALENT, INCONCLUSIVE)
DECIDED = (HELD, NOT_HELD, EQUIVALENT)

# The equivalence margin every claim is judged against unless it says otherwise: 1 point of accuracy (square, final
# row). Why: the paper's run-to-run standard deviations are mostly below 1 point and the steps of its ordering are
# 0.3-1.3 points; a difference inside one point is one its own reruns could not tell apart. Fixed before any run.
MARGIN = 0.01

# two-sided 95 % quantiles of Student's t (the 0.975 quantile) for 1..30 degrees of freedom; the normal's 1.96 beyond
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
       2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
       2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
# one-sided 95 % quantiles (the 0.95 quantile): the 90 % interval of the equivalence test; the normal's 1.645 beyond
T90 = (6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812,
       1.796, 1.782, 1.771, 1.761, 1.753, 1.746, 1.740, 1.734, 1.729, 1.725,
       1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697)
Z_975, Z_95, Z_80 = 1.96, 1.645, 0.8416  # normal quantiles: two-sided 5 %, one-sided 5 %, 80 % power


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


def t90(df: int) -> float:
    """The one-sided 95 % quantile of Student's t (the 90 % two-sided interval of the equivalence test)."""
    if df < 1:
        raise ConfigError(f"t quantile for df={df}: needs at least 1 degree of freedom (2 paired values)")
    return T90[df - 1] if df <= len(T90) else Z_95


@dataclass(frozen=True)
class Paired:
    """The per-unit differences a - b: their mean, its 95 % interval (and the 90 % one of the equivalence test), and
    the verdict on "a - b > offset" against the equivalence margin ``margin`` (None: no equivalence verdict)."""

    mean_diff: float
    ci_low: float
    ci_high: float
    n: int
    offset: float = 0.0
    margin: float | None = None
    sd: float = math.nan          # sample sd of the differences (nan with one unit)
    eq_low: float = -math.inf     # the 90 % interval
    eq_high: float = math.inf

    @property
    def equivalent(self) -> bool:
        """Both one-sided tests pass: the 90 % interval lies inside (offset - margin, offset + margin)."""
        return (self.margin is not None and self.eq_low > self.offset - self.margin
                and self.eq_high < self.offset + self.margin)

    @property
    def verdict(self) -> str:
        """held or not held when the 95 % interval excludes the offset (a real difference, reported first even
        when it is also inside the margin), else equivalent, else inconclusive."""
        if self.ci_low > self.offset:
            return HELD
        if self.ci_high < self.offset:
            return NOT_HELD
        return EQUIVALENT if self.equivalent else INCONCLUSIVE

    @property
    def needed(self) -> int | None:
        """Units needed to decide an inconclusive claim at the observed spread (5 % level, 80 % power): to detect a
        difference of the observed size, or to show equivalence when it lies inside the margin, whichever is fewer
        (+2 for the t correction); None when decided or when the spread is unknown."""
        if self.verdict != INCONCLUSIVE or not self.sd > 0:
            return None
        d = abs(self.mean_diff - self.offset)
        best = math.inf
        if d > 0:
            best = ((Z_975 + Z_80) * self.sd / d) ** 2
        if self.margin is not None and d < self.margin:
            best = min(best, ((Z_95 + Z_80) * self.sd / (self.margin - d)) ** 2)
        return None if not math.isfinite(best) else max(self.n + 1, math.ceil(best) + 2)

    def format(self, scale: float = 100.0) -> str:
        """The difference and its 95 % interval, e.g. ``+1.23 [+0.45, +2.01]`` (points with scale 100)."""
        f = lambda x: f"{x * scale:+.2f}" if math.isfinite(x) else ("+∞" if x > 0 else "-∞")  # noqa: E731
        return f"{f(self.mean_diff)} [{f(self.ci_low)}, {f(self.ci_high)}]"

    def describe(self, scale: float = 100.0) -> str:
        """The difference, its interval and the verdict (with the instances an inconclusive one would need)."""
        more = f", needs ~{self.needed}" if self.needed else ""
        return f"{self.format(scale)} {self.verdict}{more}"

    def to_dict(self) -> dict:
        """JSON-ready (an infinite bound, from a single unit, becomes None)."""
        fin = lambda x: x if math.isfinite(x) else None  # noqa: E731
        return {"mean_diff": self.mean_diff, "ci_low": fin(self.ci_low), "ci_high": fin(self.ci_high), "n": self.n,
                "offset": self.offset, "margin": self.margin, "sd": fin(self.sd), "eq_low": fin(self.eq_low),
                "eq_high": fin(self.eq_high), "verdict": self.verdict, "needed": self.needed}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Paired":
        """The inverse of :meth:`to_dict` (a document's stored comparison, to format it the one way)."""
        inf = lambda x, sign: sign * math.inf if x is None else x  # noqa: E731
        return cls(d["mean_diff"], inf(d["ci_low"], -1), inf(d["ci_high"], 1), d["n"], d.get("offset", 0.0),
                   d.get("margin"), math.nan if d.get("sd") is None else d["sd"], inf(d.get("eq_low"), -1),
                   inf(d.get("eq_high"), 1))


def paired(a: Sequence[float], b: Sequence[float], offset: float = 0.0, margin: float | None = None) -> Paired:
    """Compare per-unit values a[i] and b[i] (the same unit i on both sides) for the claim "a > b + offset", with
    the equivalence margin `margin` (None: held, not held or inconclusive only).

    The interval is mean(d) ± t95(n - 1) * sd(d) / sqrt(n) over the differences d = a - b; with n = 1 it is
    (-inf, +inf), so one unit never decides a claim.
    """
    if len(a) != len(b):
        raise ConfigError(f"paired comparison of {len(a)} against {len(b)} values: both sides need one value per "
                          "unit (seed or instance), for the same units")
    if margin is not None and not margin > 0:
        raise ConfigError(f"equivalence margin {margin!r} must be positive (e.g. {MARGIN}: one point)")
    d = [x - y for x, y in zip(_finite(a, "paired: a"), _finite(b, "paired: b"))]
    mean, sd = mean_sd(d)
    if len(d) == 1:
        return Paired(mean, -math.inf, math.inf, 1, offset, margin)
    se = sd / math.sqrt(len(d))
    half, eq = t95(len(d) - 1) * se, t90(len(d) - 1) * se
    return Paired(mean, mean - half, mean + half, len(d), offset, margin, sd, mean - eq, mean + eq)


def over_instances(a: Mapping[int, Sequence[float]], b: Mapping[int, Sequence[float]], offset: float = 0.0,
                   margin: float | None = None) -> Paired:
    """The two-stage comparison with the generated instance as the unit: each side's values per instance (one per
    seed) averaged within the instance, then :func:`paired` over the instances both sides ran."""
    common = sorted(a.keys() & b.keys())
    if not common:
        raise ConfigError("the two sides share no generated instance; run both on the same instances")
    mean = lambda v: sum(_finite(v, "over_instances: an instance's values")) / len(v)  # noqa: E731
    return paired([mean(a[k]) for k in common], [mean(b[k]) for k in common], offset, margin)


def all_of(verdicts: Iterable[str]) -> str:
    """A conjunction of sub-claims: held if every one held, not held if any was not held, else inconclusive."""
    vs = list(verdicts)
    if vs and all(v == HELD for v in vs):
        return HELD
    return NOT_HELD if NOT_HELD in vs else INCONCLUSIVE

