"""Scoring one reply against its benchmark item, with the scorer the item's format needs.

The scorer comes from the item's ``evaluation_type``, else from the run's default (``--scorer``),
else from the reference itself (``auto``): a ``\\boxed{}`` answer is math, a lone option letter
with options in the question is multiple choice, a number is numeric, tests mean code, a short
text is ``contains`` and a long one ``rouge``. Every scorer returns a :class:`Score` that says
what it read on both sides, so a wrong verdict can be traced to the extraction.

* numeric: the final number (after "the answer is", else ``\\boxed{}``, else the last one),
  read exactly: commas, currency, units, ``%``, ``.0`` and fractions do not matter.
* multiple_choice: the option letter (``(C)``, ``C)``, "the answer is C"), never an article;
  a reply that names an option's value instead of its letter gets that option.
* math: ``\\boxed{}`` / "the answer is" expressions compared for equivalence by math-verify
  (sympy) where installed, else as normalised text and numbers.
* exact: the whole reply equals a reference (whitespace, surrounding quotes and a final full
  stop aside; case counts).
* contains: a reference appears as whole words in the *answer part* of the first sentence, so
  "The opposite of right is left." does not count for "right".
* rouge: ROUGE-L F1 (rouge-score) against the best reference; right at >= 0.5 by default.
* json: the reply's first JSON object against the reference object, keys in any order,
  numbers numerically, strings case- and space-normalised (:mod:`.jsonscore`).
* code and judge: :mod:`.codeexec` and :mod:`.judge`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

from .benchmark import EVALUATION_TYPES, BenchItem
from .extract import (
    after_marker,
    final_number,
    first_sentence,
    format_number,
    last_boxed,
    latex_plain,
    numbers,
    options,
)

if TYPE_CHECKING:
    from .codeexec import SandboxConfig
    from .judge import JudgeConfig

AUTO = "auto"
SCORER_CHOICES = (AUTO, *EVALUATION_TYPES)


@dataclass
class Score:
    """The verdict on one reply."""

    scorer: str  # the evaluation type used
    correct: bool
    value: float  # 0..1: 1/0 for right/wrong, the F1 or the judge's mean for graded scorers
    got: str | None = None  # what the scorer read from the reply
    wanted: str | None = None  # what it read from the reference
    detail: str = ""  # why, when the reason is not the comparison itself
    runs: list[float] | None = None  # judge: each run's score (0..1)


@dataclass
class ScoringConfig:
    """How a run scores its items."""

    # scorer for items without evaluation_type: "auto" (from the reference) or a type
    default: str = AUTO
    # ROUGE-L F1 at which a free-text reply counts as right
    rouge_threshold: float = 0.5
    # code execution limits (None: the SandboxConfig defaults)
    sandbox: SandboxConfig | None = None
    # the LLM judge; a run with judge items refuses to start without one
    judge: JudgeConfig | None = None
    # math-verify's own time limit per comparison, in seconds (main thread only)
    math_timeout_s: int = 5
    # cached judge client and similar state
    state: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------- choosing
def _short(text: str, words: int = 6) -> bool:
    return len(text.split()) <= words and "\n" not in text.strip()


def reference_answer(reference: str) -> str:
    """The answer part of a reference: ``\\boxed{}``, else after "the answer is", else all."""
    boxed = last_boxed(reference)
    if boxed is not None:
        return boxed
    phrase = after_marker(reference)
    return (phrase if phrase else reference).strip().rstrip(".").strip()


def detect(item: BenchItem) -> str:
    """The scorer an item's reference calls for when it names none."""
    if item.tests:
        return "code"
    ref = item.reference
    if not ref.strip():
        return "judge" if item.rubric else "exact"
    if last_boxed(ref) is not None:
        return "math"
    answer = reference_answer(ref)
    if _letter_of(answer) and options(item.question):
        return "multiple_choice"
    if after_marker(ref) is not None or _short(ref):
        if re.search(r"\\[a-zA-Z]+|\^", answer):  # LaTeX or a power: an expression
            return "math"
        if _single_number(answer) is not None:
            return "numeric"
        return "contains"
    return "rouge"


def scorer_for(item: BenchItem, config: ScoringConfig) -> str:
    """The item's own type, else the run's default, else detected from the reference."""
    if item.evaluation_type:
        return item.evaluation_type
    return config.default if config.default != AUTO else detect(item)


# ---------------------------------------------------------------------------------- numeric
def _single_number(text: str) -> tuple[Fraction, bool] | None:
    """The number an answer states when it is one number, perhaps with a unit ("1,250",
    "$12", "50%", "3/4", "-7 degrees"); None for "World War 2" or "2 + 3"."""
    found = numbers(text)
    plain = latex_plain(text).strip()
    if len(found) != 1 or not re.match(r"^[-−+]?[$€£¥]?\s?\.?\d", plain):
        return None
    return found[0]


def _same_number(a: tuple[Fraction, bool], b: tuple[Fraction, bool]) -> bool:
    if a[0] == b[0]:
        return True
    if a[1] != b[1]:  # "50%" and "0.5" are the same share
        pct, plain = (a, b) if a[1] else (b, a)
        return pct[0] / 100 == plain[0]
    return False


def numeric(reply: str, item: BenchItem) -> Score:
    """The reply's final number against each reference's number."""
    got = final_number(reply)
    wanted = [n for n in (final_number(r) for r in item.references) if n is not None]
    if not wanted:
        return Score("numeric", False, 0.0, None, item.reference, "the reference has no number")
    shown = format_number(wanted[0][0]) + ("%" if wanted[0][1] else "")
    if got is None:
        return Score("numeric", False, 0.0, None, shown, "no number in the reply")
    ok = any(_same_number(got, w) for w in wanted)
    return Score("numeric", ok, float(ok), format_number(got[0]) + ("%" if got[1] else ""),
                 shown)


# -------------------------------------------------------------------------- multiple choice
# "C", "(C)", "C.", "C) 24", "(C) 24", "C. 24": a letter standing alone or opening an option
_LONE = re.compile(r"^\(?([A-J])\)?[.:]?$|^\(([A-J])\)|^([A-J])[).:](?:\s|$)")


def _letter_of(text: str) -> str | None:
    """A lone option letter ("C", "(C)", "C) 24"); "A train..." is an article, not an option."""
    m = _LONE.match(text.strip())
    return next(g for g in m.groups() if g) if m else None


def choice_letter(reply: str, choices: dict[str, str]) -> str | None:
    """The option a reply picks: the first valid capital letter after "the answer is", a first
    line that is a lone letter, "option C", or else the option whose value the reply states."""
    valid = set(choices) or set("ABCDE")
    phrase = after_marker(reply)
    candidates = []
    if phrase is not None:  # capitals standing alone: "C", "(C)", "C." but not "Bob"
        candidates += re.findall(r"(?<![\w'])([A-J])(?![\w'])", phrase)
    first = _letter_of(reply.strip().split("\n", 1)[0])
    candidates += [first] if first else []
    candidates += re.findall(r"\b(?:option|choice)(?:\s+is)?\s*:?\s*\(?([A-J])\b", reply)
    picked = next((c for c in candidates if c in valid), None)
    if picked or not choices:
        return picked
    value = final_number(reply)  # no letter: the option whose value is the reply's answer
    if value is not None:
        hits = [k for k, v in choices.items() if (n := _single_number(v)) and n[0] == value[0]]
        if len(hits) == 1:
            return hits[0]
    said = _clean(phrase or first_sentence(reply)).casefold()
    hits = [k for k, v in choices.items() if _clean(v).casefold() == said]
    return hits[0] if len(hits) == 1 else None


def multiple_choice(reply: str, item: BenchItem) -> Score:
    """The option letter the reply picks against the reference's letter."""
    choices = options(item.question)
    wanted = [w for w in (_letter_of(reference_answer(r)) for r in item.references) if w]
    if not wanted:
        return Score("multiple_choice", False, 0.0, None, item.reference,
                     "the reference names no option letter")
    got = choice_letter(reply, choices)
    if got is None:
        return Score("multiple_choice", False, 0.0, None, wanted[0], "no option in the reply")
    return Score("multiple_choice", got in wanted, float(got in wanted), got, wanted[0])


# ------------------------------------------------------------------------------ exact / text
def _clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = text.strip("\"'`“”‘’")
    return text[:-1].rstrip() if text.endswith(".") else text


def exact(reply: str, item: BenchItem) -> Score:
    """The whole reply equals a reference (whitespace, quotes, a final full stop aside)."""
    got = _clean(reply)
    ok = any(got == _clean(r) for r in item.references)
    return Score("exact", ok, float(ok), got, _clean(item.reference))


def _words(text: str, keep_case: bool = False) -> list[str]:
    """Words and operator symbols ("return a + b" is not "return a*b"); punctuation dropped."""
    return re.findall(r"\w+|[-+*/=<>%^&|]", text if keep_case else text.casefold())


_COPULA = re.compile(r"\s(?:is|are|was|were|equals|means|=)\s", re.IGNORECASE)
_STOP = {"the", "a", "an", "of", "is", "are", "what", "which", "who", "in", "to", "does",
         "do", "how", "and", "it", "its", "this", "that"}


def answer_part(reply: str, question: str) -> str:
    """The part of a reply that answers: what follows "the answer is", else in the first
    sentence "X is Y", the side that shares fewer words with the question (the other side
    restates it), Y on a tie."""
    sentence = first_sentence(reply)
    phrase = after_marker(sentence) or after_marker(reply)  # an explicit final answer wins
    if phrase:
        return phrase
    m = _COPULA.search(sentence)
    if not m:
        return sentence
    left, right = sentence[:m.start()], sentence[m.end():]
    asked = set(_words(question)) - _STOP

    def overlap(side: str) -> int:
        return len((set(_words(side)) - _STOP) & asked)

    return left if overlap(left) < overlap(right) else right


def _contained(reference: str, text: str) -> bool:
    ref = reference.strip().rstrip(".")
    # "A" is a letter, "a" an article: a one-letter reference matches its own case, unless the
    # letter is the whole answer ('"a"', "a.")
    keep_case = len(ref) == 1 and _clean(text).casefold() != ref.casefold()
    want, have = _words(ref, keep_case), _words(text, keep_case)
    if not want:
        return bool(ref) and ref in text
    n = len(want)
    return any(have[i:i + n] == want for i in range(len(have) - n + 1))


def contains(reply: str, item: BenchItem) -> Score:
    """A reference appears as whole words in the answer part of the reply's first sentence."""
    part = answer_part(reply, item.question)
    ok = any(_contained(r, part) for r in item.references)
    return Score("contains", ok, float(ok), part, item.reference.strip())


def _rouge_scorer():
    """ROUGE-L from rouge-score, with a tokenizer that keeps non-Latin words: the package's
    default one keeps only [a-z0-9], which would score every Chinese or Greek reply 0."""
    from rouge_score import rouge_scorer
    from rouge_score.tokenizers import Tokenizer

    class UnicodeTokenizer(Tokenizer):
        def tokenize(self, text: str) -> list[str]:
            # CJK scripts have no spaces between words: score them per character
            return re.findall(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W_]+", text.lower())

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=UnicodeTokenizer())


def rouge(reply: str, item: BenchItem, config: ScoringConfig) -> Score:
    """ROUGE-L F1 against the best-matching reference."""
    scorer = config.state.get("rouge") or config.state.setdefault("rouge", _rouge_scorer())
    best = max(scorer.score(r, reply)["rougeL"].fmeasure for r in item.references)
    ok = best >= config.rouge_threshold
    return Score("rouge", ok, best, f"ROUGE-L {best:.2f}",
                 f">= {config.rouge_threshold:.2f}")


# --------------------------------------------------------------------------------- dispatch
def score_item(reply: str, item: BenchItem, config: ScoringConfig | None = None) -> Score:
    """Score one reply with the scorer the item calls for."""
    config = config or ScoringConfig()
    kind = scorer_for(item, config)
    if kind == "numeric":
        return numeric(reply, item)
    if kind == "multiple_choice":
        return multiple_choice(reply, item)
    if kind == "math":
        from .mathexpr import math_score

        return math_score(reply, item, config.math_timeout_s)
    if kind == "exact":
        return exact(reply, item)
    if kind == "contains":
        return contains(reply, item)
    if kind == "rouge":
        return rouge(reply, item, config)
    if kind == "json":
        from .jsonscore import json_score

        return json_score(reply, item)
    if kind == "code":
        from .codeexec import code_score

        return code_score(reply, item, config.sandbox)
    if kind == "judge":
        from .judge import judge_score

        return judge_score(reply, item, config)
    raise ValueError(f"unknown evaluation type {kind!r}")


def is_correct(prediction: str, reference: str, question: str = "") -> bool:
    """Whether ``prediction`` answers right, the scorer chosen from ``reference`` (``auto``)."""
    return score_item(prediction, BenchItem(0, [reference], question)).correct


def extract_answer(text: str) -> str:
    """The final answer of a text as the auto scorer reads it: its final number, else its
    answer phrase lowercased ("Paris." -> "paris")."""
    found = final_number(text)
    if found is not None:
        return format_number(found[0])
    return re.sub(r"\s+", " ", reference_answer(text).lower()).strip(" .")
