"""Paired statistics (bootstrap interval, exact McNemar) and the guide's whole verdict."""

from __future__ import annotations

from math import comb

import pytest

from locollm.evaluate.stats import gap_by_group, mcnemar_exact, paired_gap
from locollm.evaluate.verdict import judge


def runs(base_right: int, adapter_right: int, n: int, both: int | None = None):
    """Per-item verdicts of two runs with ``both`` items right in each (default: as many as
    can be)."""
    both = min(base_right, adapter_right) if both is None else both
    base = [True] * both + [True] * (base_right - both) + [False] * (n - base_right)
    adapter = [True] * both + [False] * (base_right - both) + \
        [True] * (adapter_right - both) + [False] * (n - base_right - adapter_right + both)
    return base, adapter


def gap_of(base: list[bool], adapter: list[bool]):
    return paired_gap([float(x) for x in base], [float(x) for x in adapter], base, adapter)


def test_a_large_gap_and_a_small_one_read_differently():
    big = gap_of(*runs(1, 37, 60))
    small = gap_of(*runs(30, 33, 60, both=27))
    assert big.points == pytest.approx(60.0) and big.significant and big.p_value < 1e-6
    assert big.low > 40 and big.high < 80
    assert small.points == pytest.approx(5.0) and not small.significant
    assert small.low < 0 < small.high  # the interval says the gap could be zero


def test_mcnemar_is_the_exact_binomial_on_discordant_items():
    b, c = 9, 2
    expected = min(1.0, 2 * sum(comb(b + c, k) for k in range(0, c + 1)) / 2 ** (b + c))
    assert mcnemar_exact(b, c) == pytest.approx(expected)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)


def test_interval_is_reproducible_and_holds_the_point():
    base, adapter = runs(20, 32, 50, both=15)
    first, second = gap_of(base, adapter), gap_of(base, adapter)
    assert (first.low, first.high) == (second.low, second.high)
    assert first.low < first.points < first.high
    assert (first.only_b, first.only_a) == (17, 5)


def test_identical_runs_have_a_zero_width_interval():
    same = gap_of(*runs(10, 10, 20))
    assert (same.points, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_graded_values_make_the_gap():
    gap = paired_gap([0.2, 0.4], [0.6, 0.9], [False, False], [True, True])
    assert gap.points == pytest.approx(45.0)


def test_paired_runs_must_have_the_same_items():
    with pytest.raises(ValueError):
        paired_gap([1.0], [1.0, 0.0], [True], [True, False])


def test_gap_per_difficulty():
    levels = ["easy"] * 4 + ["hard"] * 4 + [None]
    base = [True, False, False, False, False, False, False, False, True]
    adapter = [True, True, True, True, False, False, True, False, False]
    groups = gap_by_group(levels, [float(x) for x in base], [float(x) for x in adapter],
                          base, adapter)
    assert set(groups) == {"easy", "hard"}
    assert groups["easy"].points == pytest.approx(75.0) and groups["easy"].n == 4
    assert groups["hard"].points == pytest.approx(25.0)


# ------------------------------------------------------------------------------ the verdict
def test_strong_gain_with_a_large_ood_drop_is_not_strong():
    gain = gap_of(*runs(1, 37, 60))
    ood = gap_of(*runs(15, 10, 40))  # 12.5 points lost out of domain
    v = judge(gain, ood)
    assert (v.gain_tier, v.name, v.ood_ok) == ("strong", "moderate", False)
    assert v.ood_drop == pytest.approx(12.5)
    text = "\n".join(v.parts + v.advice)
    assert "FAILS: over the 5-pt limit" in text and "passes the strong bar" in text
    assert "fewer epochs" in text  # what the guide suggests
    assert "not significant at 40 items" in text  # 15 -> 10 of 40 could still be noise


def test_strong_needs_both_parts():
    gain = gap_of(*runs(1, 37, 60))
    assert judge(gain, gap_of(*runs(15, 13, 40))).name == "strong"  # a 5-point drop is fine
    assert judge(gain, gap_of(*runs(15, 17, 40))).name == "strong"  # a gain out of domain
    unmeasured = judge(gain, None)
    assert unmeasured.name == "moderate" and unmeasured.ood_ok is None
    assert any("eval/ood.jsonl" in a for a in unmeasured.advice)


def test_moderate_weak_and_negative_still_report_the_ood_failure():
    ood_bad = gap_of(*runs(15, 10, 40))
    v = judge(gap_of(*runs(30, 36, 60)), ood_bad)
    assert v.name == "moderate" and len(v.advice) == 2
    assert judge(gap_of(*runs(30, 31, 60)), None).name == "weak"
    assert judge(gap_of(*runs(30, 20, 60)), None).name == "negative"


def test_the_verdict_says_when_a_gap_is_not_significant():
    small = judge(gap_of(*runs(30, 33, 60, both=27)), gap_of(*runs(10, 10, 40)))
    assert not small.significant
    assert any("NOT significant at this benchmark's size" in p for p in small.parts)
    big = judge(gap_of(*runs(1, 37, 60)), None)
    assert big.significant and any("): significant" in p for p in big.parts)
