"""The math scorer: a reply's final expression against the reference's, for equivalence.

The final answer is read the way competition references write it (the last ``\\boxed{}``, else
the phrase after "the answer is"). Equivalence is math-verify's (Hugging Face's checker on top of
sympy: ``\\frac{1}{2}`` = ``0.5`` = ``1/2``, ``\\sqrt{8}`` = ``2\\sqrt{2}``, sets and intervals)
where it is installed. Without it the answers must agree as normalised text or as numbers, and
the Score says which comparison was used.
"""

from __future__ import annotations

import re
import threading

from .benchmark import BenchItem
from .extract import final_number, last_boxed, latex_plain
from .scorers import Score, reference_answer


def final_expression(text: str) -> str | None:
    """The final answer of a solution: its last ``\\boxed{}``, else after "the answer is"."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    answer = reference_answer(text)
    return answer if answer != text.strip().rstrip(".").strip() or len(text) < 40 else None


def normalise(expr: str) -> str:
    """Expression text with presentation removed: ``$``, ``\\left``, ``\\dfrac``, spaces."""
    expr = latex_plain(expr)
    expr = re.sub(r"\\(?:left|right|displaystyle|,|;|!|quad)", "", expr)
    expr = expr.replace("$", "").replace("\\cdot", "*").replace("\\times", "*")
    expr = re.sub(r"\s+", "", expr).rstrip(".")
    return re.sub(r"^\((-?[\w.]+)\)$", r"\1", expr)


def _is_number(expr: str) -> bool:
    return re.fullmatch(r"[-+]?(?:\d+|\d*\.\d+)(?:/\d+)?", normalise(expr)) is not None


def _verify(gold: str, answer: str, timeout_s: int) -> bool | None:
    """math-verify's equivalence, or None when math-verify is not installed."""
    try:
        from math_verify import parse, verify
    except ImportError:
        return None
    # math-verify times out with SIGALRM, which only the main thread may set
    limit = timeout_s if threading.current_thread() is threading.main_thread() else None
    parsed_gold = parse(f"${gold}$", parsing_timeout=limit)
    parsed = parse(f"${answer}$", parsing_timeout=limit)
    if not parsed_gold or not parsed:
        return False
    return bool(verify(parsed_gold, parsed, timeout_seconds=limit))


def math_score(reply: str, item: BenchItem, timeout_s: int = 5) -> Score:
    """Equivalence of the reply's final expression with any reference's."""
    wanted = [w for w in (final_expression(r) for r in item.references) if w]
    if not wanted:
        return Score("math", False, 0.0, None, item.reference,
                     "the reference has no \\boxed{} or 'the answer is' answer")
    got = final_expression(reply)
    if got is None:
        number = final_number(reply)
        got = None if number is None else str(number[0])
    if got is None:
        return Score("math", False, 0.0, None, wanted[0], "no final answer in the reply")
    for gold in wanted:
        if normalise(gold) == normalise(got):
            return Score("math", True, 1.0, got, gold)
    how = ""
    for gold in wanted:
        verdict = _verify(gold, got, timeout_s)
        if verdict:
            return Score("math", True, 1.0, got, gold, "equivalent (math-verify)")
        if verdict is None:
            how = "math-verify not installed: compared as text and numbers"
            if _is_number(gold) and _is_number(got) and \
                    final_number(gold)[0] == final_number(got)[0]:
                return Score("math", True, 1.0, got, gold, how)
    return Score("math", False, 0.0, got, wanted[0], how)
