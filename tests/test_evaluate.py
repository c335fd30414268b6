"""Scoring and the guide's verdicts."""

from __future__ import annotations

import pytest

from locollm.evaluate.scorers import extract_answer, is_correct
from locollm.evaluate.verdict import verdict


@pytest.mark.parametrize(("text", "expected"), [
    ("Step 1: 40 + 30 = 70\n\nThe answer is 82.", "82"),
    ("The answer is: $1,250", "1250"),
    ("so 3 apples then 12 apples", "12"),
    ("The answer is 7.0", "7"),
    ("Paris.", "paris"),
    ("", ""),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_is_correct_uses_the_final_answer_not_intermediate_numbers():
    reference = "Step 1: 20 + 30 = 50\nThe answer is 56."
    assert is_correct("Step 1: 20 + 30 = 50\nThe answer is 56.", reference)
    assert not is_correct("Step 1: 20 + 30 = 50\nThe answer is 50.", reference)
    assert not is_correct("", reference)


@pytest.mark.parametrize(("prediction", "reference", "ok"), [
    ("The capital of England is London.", "London", True),
    ("London", "London.", True),
    ("Londonderry is a city.", "London", False),
    ("I am not sure.\nMaybe London.", "London", False),
    ("The opposite of hot is cold", "cold", True),
    ("The answer is 12.", "12", True),
    ("I have 12 apples and 13 pears", "12", False),
])
def test_text_and_number_references(prediction, reference, ok):
    assert is_correct(prediction, reference) is ok


@pytest.mark.parametrize(("adapter", "base", "name"), [
    (0.72, 0.41, "strong"),
    (0.56, 0.41, "strong"),   # exactly 15 points
    (0.50, 0.41, "moderate"),
    (0.45, 0.41, "weak"),
    (0.41, 0.41, "weak"),
    (0.30, 0.41, "negative"),
])
def test_verdict_thresholds(adapter, base, name):
    got, points = verdict(adapter, base)
    assert got == name
    assert points == pytest.approx((adapter - base) * 100)
