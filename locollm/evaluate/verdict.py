"""The guide's verdict on a gain: strong (>= 15 points above base), moderate (5-15), weak
(0-5), negative (below base), and what the guide says to do next for each.
"""

from __future__ import annotations


def verdict(adapter_score: float, base_score: float) -> tuple[str, float]:
    """The guide's verdict and the gain in percentage points."""
    points = (adapter_score - base_score) * 100
    if points < 0:
        return "negative", points
    if points < 5:
        return "weak", points
    if points < 15:
        return "moderate", points
    return "strong", points


ADVICE = {
    "strong": "ship it: 15+ points above base (check the out-of-domain results too)",
    "moderate": "iterate: check the gain holds across difficulty levels; add harder examples",
    "weak": "rethink: data quality, a narrower domain, more data, or other hyperparameters",
    "negative": "don't ship: look for contamination, format issues or corrupted data",
}
