"""Reworded near-duplicates: planted rewordings are found, generated problems are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from locollm.data.reworded import find_reworded

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTION = "Solve the following arithmetic word problem."


def _rows(path: Path) -> list[tuple[str, str, str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r["instruction"], r.get("input", ""), r["output"]) for r in rows]


MATH = _rows(ROOT / "adapters/math/training/dataset.jsonl")

PLANTED = {
    "reworded by three words": (
        "Ana had 27 stickers and gave away 23. How many stickers are left?",
        "Ana owned 27 stickers and handed out 23. How many stickers remain?"),
    "reordered clauses": (
        "Ana had 27 stickers and gave away 23. How many stickers are left?",
        "How many stickers are left if Ana had 27 stickers and gave away 23?"),
    "changed name only": (
        "Ana had 27 stickers and gave away 23. How many stickers are left?",
        "Omar had 27 stickers and gave away 23. How many stickers are left?"),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_planted_rewording_is_found_among_generated_problems(case):
    original, reworded = PLANTED[case]
    answer = "27 - 23 = 4\n\nThe answer is 4."
    data = MATH + [(INSTRUCTION, original, answer), (INSTRUCTION, reworded, answer)]
    pairs = {(p.a, p.b) for p in find_reworded(data)}
    assert (len(MATH), len(MATH) + 1) in pairs


def test_same_words_other_numbers_is_not_a_rewording():
    a = (INSTRUCTION, "Ana had 27 stickers and gave away 23. How many are left?",
         "The answer is 4.")
    b = (INSTRUCTION, "Ana had 29 stickers and gave away 23. How many are left?",
         "The answer is 6.")
    same = (INSTRUCTION, "Ana had 27 stickers and gave out 23. How many are left?",
            "The answer is 4.")
    pairs = {(p.a, p.b) for p in find_reworded(MATH + [a, b, same])}
    assert (len(MATH), len(MATH) + 1) not in pairs
    assert (len(MATH), len(MATH) + 2) in pairs  # the same check does see a real rewording


@pytest.mark.parametrize("path", ["adapters/math/training/dataset.jsonl",
                                  "adapters/extract/training/dataset.jsonl",
                                  "adapters/extract/eval/benchmark.jsonl"])
def test_shipped_generated_data_is_not_flagged(path):
    assert find_reworded(_rows(ROOT / path)) == []


def test_exact_copies_are_left_to_the_exact_check():
    row = MATH[0]
    assert find_reworded([row, row]) == []
