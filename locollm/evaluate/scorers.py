"""Scoring one answer against its reference: the final answer extracted and compared.

A numeric reference must match the prediction's final number; a short text reference must
appear as whole words in the prediction's first line.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_ANSWER = re.compile(r"answer is\s*:?\s*\$?(-?\d[\d,]*(?:\.\d+)?)", re.IGNORECASE)


def extract_answer(text: str) -> str:
    """The final answer: the number after "answer is", else the last number, else the last line."""
    match = _ANSWER.findall(text)
    numbers = match or _NUMBER.findall(text)
    if numbers:
        value = numbers[-1].replace(",", "")
        return value[:-2] if value.endswith(".0") else value.rstrip(".")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return re.sub(r"\s+", " ", lines[-1].lower()).strip(" .") if lines else ""


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def is_correct(prediction: str, reference: str) -> bool:
    """Exact match of the final answer.

    A numeric reference must match the prediction's final number exactly. A short text
    reference ("London") must appear as whole words in the prediction's first line, so "The
    capital of England is London." counts and "Londonderry" or a later ramble does not.
    """
    expected = extract_answer(reference)
    if not expected:
        return False
    if _NUMBER.fullmatch(expected):
        return extract_answer(prediction) == expected
    first = next((line for line in prediction.splitlines() if line.strip()), "")
    return f" {_words(expected)} " in f" {_words(first)} "
