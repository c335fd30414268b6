"""Paired statistics of two runs on the same items: the gap, how sure it is, per difficulty.

The adapter and the base answer the *same* items, so the comparison is paired: the gap is the
mean of the per-item differences, its 95% interval a bootstrap over items of those differences
(scipy.stats.bootstrap, percentile method, a fixed seed so a report is reproducible), and its
significance the exact McNemar test (a two-sided binomial test on the items only one of the two
got right, scipy.stats.binomtest). 1/60 against 37/60 and 30/60 against 33/60 then read
differently: p < 0.0001 against p = 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

ALPHA = 0.05  # the significance level reports use
RESAMPLES = 10_000
SEED = 0


@dataclass
class PairedGap:
    """B minus A on the same items, in points (100 x the difference of mean values)."""

    n: int  # items compared
    a: float  # mean value of A (the base), 0..1
    b: float  # mean value of B (the adapter), 0..1
    points: float  # (b - a) * 100
    low: float  # 95% interval of the gap, in points
    high: float
    only_b: int  # items only B got right
    only_a: int  # items only A got right
    p_value: float  # exact McNemar, two-sided

    @property
    def significant(self) -> bool:
        """The gap would rarely arise by chance at this benchmark's size (p < 0.05)."""
        return self.p_value < ALPHA

    def to_json(self) -> dict:
        """The numbers as a JSON object (with ``significant``)."""
        return asdict(self) | {"significant": self.significant}


def mcnemar_exact(only_b: int, only_a: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (1.0 when there are none)."""
    from scipy.stats import binomtest

    n = only_b + only_a
    return 1.0 if n == 0 else float(binomtest(only_b, n, 0.5).pvalue)


def bootstrap_interval(diffs: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of paired differences."""
    import numpy as np
    from scipy.stats import bootstrap

    data = np.asarray(diffs, dtype=float)
    if len(data) < 2 or np.all(data == data[0]):
        value = float(data.mean()) if len(data) else 0.0
        return value, value  # no spread to resample: the interval is the point
    result = bootstrap((data,), np.mean, confidence_level=level, n_resamples=RESAMPLES,
                       method="percentile", vectorized=True, rng=np.random.default_rng(SEED))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_gap(a_values: Sequence[float], b_values: Sequence[float],
               a_correct: Sequence[bool], b_correct: Sequence[bool]) -> PairedGap:
    """The gap of B over A on the same items.

    Args:
        a_values, b_values: per-item values (0..1; 1/0 for right/wrong scorers).
        a_correct, b_correct: per-item verdicts, for McNemar.
    """
    n = len(a_values)
    if not (len(b_values) == len(a_correct) == len(b_correct) == n):
        raise ValueError("paired runs must score the same items")
    if n == 0:
        return PairedGap(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 1.0)
    diffs = [b - a for a, b in zip(a_values, b_values, strict=True)]
    low, high = bootstrap_interval(diffs)
    only_b = sum(b and not a for a, b in zip(a_correct, b_correct, strict=True))
    only_a = sum(a and not b for a, b in zip(a_correct, b_correct, strict=True))
    mean_a, mean_b = sum(a_values) / n, sum(b_values) / n
    return PairedGap(n, mean_a, mean_b, (mean_b - mean_a) * 100, low * 100, high * 100,
                     only_b, only_a, mcnemar_exact(only_b, only_a))


def gap_by_group(groups: Sequence[str | None], a_values: Sequence[float],
                 b_values: Sequence[float], a_correct: Sequence[bool],
                 b_correct: Sequence[bool]) -> dict[str, PairedGap]:
    """:func:`paired_gap` within each group (difficulty level); items without one are left out."""
    index: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        if group:
            index.setdefault(str(group), []).append(i)
    return {name: paired_gap([a_values[i] for i in rows], [b_values[i] for i in rows],
                             [a_correct[i] for i in rows], [b_correct[i] for i in rows])
            for name, rows in sorted(index.items())}


def format_p(p: float) -> str:
    """A p-value as reports print it: p < 0.0001, p = 0.032, p = 1.00."""
    if p < 0.0001:
        return "p < 0.0001"
    return f"p = {p:.4f}" if p < 0.01 else f"p = {p:.2f}"
