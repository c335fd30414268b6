"""Scorers, one per benchmark format: the cases issue 9 found wrong, and their neighbours."""

from __future__ import annotations

import pytest

from locollm.evaluate.benchmark import BenchItem
from locollm.evaluate.scorers import (
    ScoringConfig,
    detect,
    extract_answer,
    is_correct,
    score_item,
)
from locollm.evaluate.verdict import verdict

AQUA_INPUT = ("A car covers 72 km in 3 hours. What is its speed?\n"
              "Options:\nA) 21 km/h\nB) 24 km/h\nC) 30 km/h\nD) 36 km/h\nE) 40 km/h")
AQUA_REF = "Speed = 72 / 3 = 24 km/h.\n\nThe answer is B."


def item(reference: str | list[str], question: str = "", input: str = "", **kw) -> BenchItem:
    refs = reference if isinstance(reference, list) else [reference]
    return BenchItem(1, refs, question, input, **kw)


def score(reply: str, it: BenchItem, **config):
    return score_item(reply, it, ScoringConfig(**config))


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


# ----------------------------------------------------------------------------- the cases
def test_aqua_rat_is_scored_by_its_option_letter():
    it = item(AQUA_REF, "Solve", AQUA_INPUT)
    assert detect(it) == "multiple_choice"
    wrong = score("I think 24. The answer is A.", it)  # the old scorer: right (24 = 24)
    assert not wrong.correct and (wrong.got, wrong.wanted) == ("A", "B")
    assert score("The answer is B.", it).correct  # the old scorer: wrong (no number)
    assert not score("The answer is C.", it).correct


def test_math_reference_fraction_is_not_its_denominator():
    it = item("So $x = \\boxed{\\frac{1}{2}}$.\n\nThe answer is \\frac{1}{2}.")
    assert detect(it) == "math"
    assert not score("The answer is 2.", it).correct  # the old scorer: right
    for right in ("The answer is 0.5", "$\\boxed{\\dfrac{1}{2}}$", "The answer is 1/2.",
                  "x = \\boxed{\\frac12}"):
        assert score(right, it).correct, right


def test_code_is_not_compared_as_words():
    it = item("return a + b", "Complete: def f(a, b):")
    assert not score("return a*b", it).correct  # the old scorer: right
    assert score("return a + b", it).correct


def test_option_letter_a_is_not_the_article_a():
    it = item("The answer is A.", "Pick one", "Which is even?\nA) 4\nB) 5")
    assert not score("a number that is even", it).correct
    assert not score("A number that is even is the answer.", it).correct
    assert score("(A) 4", it).correct and score("The answer is (A)", it).correct
    letter = item("A", "What is the first letter of the English alphabet?")
    assert score("The first letter is A.", letter).correct
    assert score('The first letter of the English alphabet is "a".', letter).correct
    assert not score("It is a vowel.", letter).correct


def test_a_restated_question_does_not_count_as_the_answer():
    it = item("right", "What is the opposite of left?")
    reply = "The opposite of right is left.\n\nThe opposite of left is right."
    assert not score(reply, it).correct  # in the shipped ood_results.json as right
    assert score("The opposite of left is right.", it).correct
    assert score("Right.", it).correct
    capital = item("Madrid", "What is the capital of Spain?")
    assert score("Madrid is the capital of Spain.", capital).correct
    assert score("The Spanish capital is Madrid.", capital).correct
    assert not score("The capital of Spain is 20. Madrid is nice.", capital).correct


# ----------------------------------------------------------------------------------- numeric
@pytest.mark.parametrize(("reply", "reference", "ok"), [
    ("The answer is 1,250.", "1250", True),
    ("The answer is $1,250.00", "The answer is 1250.", True),
    ("It costs 12 dollars.", "$12", True),
    ("The answer is 50%", "50%", True),
    ("The answer is 0.5", "50%", True),
    ("The answer is 7.0", "7", True),
    ("The answer is 3/4", "0.75", True),
    ("The answer is 1 1/2 cups", "1.5", True),
    ("The answer is -7.", "-7", True),
    ("63 - 20 = 43, so the answer is 43", "43", True),
    ("The answer is 2 + 3 = 5.", "5", True),
    ("There are seven days in a week.", "7", True),
    ("Twenty-four hours.", "24", True),
    ("Step 1: 20 + 30 = 50\nThe answer is 50.", "Step 1: 20 + 30 = 50\nThe answer is 56.",
     False),
    ("I have 12 apples and 13 pears", "12", False),
    ("The answer is 7.5", "7", False),
    ("I don't know.", "7", False),
    ("#### 72", "The answer is 72.", True),
])
def test_numeric(reply, reference, ok):
    it = item(reference)
    assert detect(it) == "numeric"
    assert score(reply, it).correct is ok


def test_numeric_says_why_it_failed():
    result = score("I don't know.", item("7"))
    assert result.detail == "no number in the reply" and result.value == 0.0


# -------------------------------------------------------------------- multiple choice, more
@pytest.mark.parametrize(("reply", "ok"), [
    ("B", True), ("B.", True), ("(B)", True), ("B) 24 km/h", True),
    ("The correct option is B", True), ("Answer: B", True),
    ("The speed is 24 km/h.", True),  # the option's value instead of its letter
    ("The answer is 24 km/h", True),
    ("The answer is 30 km/h", False),
    ("The answer is (c)", False), ("A car covers it", False), ("", False),
])
def test_multiple_choice_reads_the_option(reply, ok):
    assert score(reply, item(AQUA_REF, "Solve", AQUA_INPUT)).correct is ok


# --------------------------------------------------------------------------------------- math
@pytest.mark.parametrize(("reply", "reference", "ok"), [
    ("The answer is $\\sqrt{8}$", "\\boxed{2\\sqrt{2}}", True),
    ("\\boxed{x^2+2x+1}", "\\boxed{(x+1)^2}", True),
    ("\\boxed{\\left(1, 2\\right)}", "\\boxed{(1,2)}", True),
    ("The answer is 3.", "\\boxed{\\pi}", False),
    ("The answer is \\frac{2}{4}", "\\boxed{\\frac{1}{2}}", True),
    ("no answer here at all, just talking about the problem", "\\boxed{4}", False),
])
def test_math_equivalence(reply, reference, ok):
    assert score(reply, item(reference), default="math").correct is ok


# ------------------------------------------------------------------------- exact, contains
def test_exact_ignores_only_presentation():
    it = item("Paris")
    assert score(" Paris. ", it, default="exact").correct
    assert score('"Paris"', it, default="exact").correct
    assert not score("paris", it, default="exact").correct  # case counts
    assert not score("Paris, France", it, default="exact").correct


def test_contains_accepts_any_listed_reference_as_whole_words():
    it = item(["Denver Broncos", "Broncos"], "Who won Super Bowl 50?")
    assert score("The Broncos won it.", it).correct
    assert score("Denver Broncos", it).correct
    assert not score("The Bronco fans cheered.", it).correct
    assert not score("Londonderry", item("London", "Which city?")).correct
    assert not score("I am not sure.\nMaybe London.", item("London", "Which city?")).correct


# -------------------------------------------------------------------------------------- rouge
def test_rouge_for_free_text():
    ref = ("Photosynthesis is the process by which green plants use sunlight to turn water "
           "and carbon dioxide into glucose and oxygen.")
    it = item(ref, "Explain photosynthesis.")
    assert detect(it) == "rouge"
    close = score("Photosynthesis is how green plants use sunlight to turn water and carbon "
                  "dioxide into glucose and oxygen.", it)
    far = score("The stock market fell sharply on Tuesday.", it)
    assert close.correct and 0.7 < close.value <= 1.0
    assert not far.correct and far.value < 0.2
    assert not score(close.got or "", it, rouge_threshold=0.99).correct


def test_rouge_scores_scripts_without_latin_letters():
    it = item("光合作用是植物利用阳光制造养分的过程", "什么是光合作用？")
    assert score("光合作用是植物利用阳光制造养分的过程", it, default="rouge").value == 1.0
    assert score("今天天气很好", it, default="rouge").value < 0.2
    greek = item("η φωτοσύνθεση μετατρέπει το φως σε ενέργεια")
    assert score("η φωτοσύνθεση μετατρέπει το φως σε ενέργεια", greek,
                 default="rouge").value == 1.0


# -------------------------------------------------------------------------- choosing a scorer
@pytest.mark.parametrize(("it", "kind"), [
    (item("The answer is 59."), "numeric"),
    (item("12 apples"), "numeric"),
    (item("World War 2"), "contains"),
    (item("Paris"), "contains"),
    (item("\\frac{1}{2}"), "math"),
    (item("x^2 + 1"), "math"),
    (item("The answer is C.", "Pick", "Q?\nA) 1\nB) 2\nC) 3"), "multiple_choice"),
    (item("C"), "contains"),  # a letter with no options is just a letter
    (item("", tests="assert f() == 1"), "code"),
    (item("A long explanation of how the thing works, in several words and more."), "rouge"),
])
def test_detect(it, kind):
    assert detect(it) == kind


def test_item_type_beats_the_run_default_which_beats_detection():
    it = item("Paris")
    assert score("Paris, France", it).scorer == "contains"
    assert score("Paris, France", it, default="exact").scorer == "exact"
    typed = item("Paris", evaluation_type="rouge")
    assert score("Paris, France", typed, default="exact").scorer == "rouge"


def test_is_correct_keeps_its_meaning():
    reference = "Step 1: 20 + 30 = 50\nThe answer is 56."
    assert is_correct("Step 1: 20 + 30 = 50\nThe answer is 56.", reference)
    assert not is_correct("", reference)
    assert is_correct("The capital of England is London.", "London",
                      "What is the capital of England?")


@pytest.mark.parametrize(("adapter", "base", "name"), [
    (0.72, 0.41, "strong"),
    (0.56, 0.41, "strong"),   # exactly 15 points
    (0.50, 0.41, "moderate"),
    (0.45, 0.41, "weak"),
    (0.41, 0.41, "weak"),
    (0.30, 0.41, "negative"),
])
def test_gain_tiers(adapter, base, name):
    got, points = verdict(adapter, base)
    assert got == name
    assert points == pytest.approx((adapter - base) * 100)
