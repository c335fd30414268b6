"""The guide's verdict, all of it: the benchmark gain *and* the out-of-domain check.

The guide (Phase 4, "Interpreting Results"): strong (ship it) is 15+ points above the base with
minimal out-of-domain degradation, here a drop of at most 5 points; moderate (iterate) is 5-15
points; weak (rethink) under 5; negative (don't ship) below the base. A gain that clears 15
points while the out-of-domain check fails (or was not run) is not strong: the verdict says
which part failed and what the guide suggests. It also says when the gap is not significant at
the benchmark's size (exact McNemar, p >= 0.05), however large it looks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .stats import PairedGap, format_p

STRONG_POINTS = 15.0
MODERATE_POINTS = 5.0
MAX_OOD_DROP = 5.0

ADVICE = {
    "strong": "ship it: 15+ points above base with minimal out-of-domain degradation",
    "moderate": "iterate: check the gain holds across difficulty levels; if the adapter only "
                "helps on easy questions, add challenging examples",
    "weak": "rethink: data quality (most common), a narrower domain, a domain the base does "
            "not already handle, more data, or other hyperparameters",
    "negative": "don't ship: check for data contamination (benchmark items in the training "
                "set), format issues or corrupted training data",
}
OOD_ADVICE = ("the adapter damages what the base could already do: the guide's remedy for "
              "overfitting is more diverse training data or fewer epochs (mix in general "
              "examples, lower the epochs or the learning rate), then re-evaluate")
NO_OOD_ADVICE = ("put 30+ general questions the base answers well in eval/ood.jsonl and run "
                 "`locollm eval` again")


def gain_tier(points: float) -> str:
    """The guide's name for a benchmark gain alone."""
    if points < 0:
        return "negative"
    if points < MODERATE_POINTS:
        return "weak"
    if points < STRONG_POINTS:
        return "moderate"
    return "strong"


def verdict(adapter_score: float, base_score: float) -> tuple[str, float]:
    """The gain's tier and the gain in percentage points (the benchmark part alone)."""
    points = (adapter_score - base_score) * 100
    return gain_tier(points), points


@dataclass
class Verdict:
    """The whole verdict: its name, the parts it rests on, and what to do next."""

    name: str  # strong, moderate, weak, negative
    gain_points: float
    gain_tier: str  # the tier of the benchmark gain alone
    ood_drop: float | None  # points lost out of domain (None: not measured)
    ood_ok: bool | None  # drop <= 5 points (None: not measured)
    significant: bool
    parts: list[str] = field(default_factory=list)  # one line per part, passed or failed
    advice: list[str] = field(default_factory=list)  # what the guide suggests

    def to_json(self) -> dict:
        """The verdict as a JSON object."""
        return asdict(self)


def _gain_line(gap: PairedGap) -> str:
    bar = {"strong": f">= {STRONG_POINTS:.0f}: passes the strong bar",
           "moderate": f"between {MODERATE_POINTS:.0f} and {STRONG_POINTS:.0f}: moderate",
           "weak": f"under {MODERATE_POINTS:.0f}: weak",
           "negative": "below the base: negative"}[gain_tier(gap.points)]
    return f"benchmark: {gap.points:+.1f} pts, {bar}"


def _significance_line(gap: PairedGap) -> str:
    where = f"{gap.points:+.1f} pts on {gap.n} items (95% CI {gap.low:+.1f} to {gap.high:+.1f}, "
    if gap.significant:
        return f"significance: {where}{format_p(gap.p_value)}): significant"
    return (f"significance: {where}{format_p(gap.p_value)}): NOT significant at this "
            f"benchmark's size; the gap could be noise ({gap.only_b} items only the adapter "
            f"got right, {gap.only_a} only the base): add items to tell")


def judge(gap: PairedGap, ood: PairedGap | None) -> Verdict:
    """The guide's verdict from the benchmark gap and the out-of-domain gap (None: not run).

    Args:
        gap: adapter minus base on the benchmark.
        ood: adapter minus base on the out-of-domain set; its negative is the drop.
    """
    tier = gain_tier(gap.points)
    parts = [_gain_line(gap)]
    advice = []
    drop = None if ood is None else -ood.points
    ood_ok = None if drop is None else drop <= MAX_OOD_DROP
    if drop is None:
        parts.append(f"out-of-domain: not measured; strong needs a drop of at most "
                     f"{MAX_OOD_DROP:.0f} pts")
    else:
        how = f"drop of {drop:.1f} pts" if drop > 0 else f"no drop ({-drop:+.1f} pts)"
        sure = f" (95% CI of the change {ood.low:+.1f} to {ood.high:+.1f}, " \
               f"{format_p(ood.p_value)})"
        state = "within" if ood_ok else "FAILS: over"
        noise = "" if ood.significant or drop <= 0 else \
            f"; not significant at {ood.n} items, more out-of-domain items would tell"
        parts.append(f"out-of-domain: {how}{sure}, {state} the {MAX_OOD_DROP:.0f}-pt limit"
                     f"{noise}")
    parts.append(_significance_line(gap))
    name = tier
    if tier == "strong" and not ood_ok:
        name = "moderate"
        advice.append(f"the benchmark gain is strong, but strong also needs the out-of-domain "
                      f"check: {OOD_ADVICE if drop is not None else NO_OOD_ADVICE}")
    else:
        advice.append(ADVICE[tier])
        if ood_ok is False:
            advice.append(OOD_ADVICE)
        elif ood_ok is None and tier != "negative":
            advice.append(NO_OOD_ADVICE)
    return Verdict(name, gap.points, tier, drop, ood_ok, gap.significant, parts, advice)
