"""Reworded near-duplicates: planted rewordings are found, generated problems are not."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from locollm.data.reworded import find_reworded

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTION = "Solve the following arithmetic word problem."


def _rows(path: Path) -> list[tuple[str, str, str]]:
    """As `locollm data check` compares them: a replay example by its question alone."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r["instruction"], r.get("input", ""),
             "" if r.get("source") == "replay" else r["output"]) for r in rows]


def _numbers(row: tuple[str, str, str]) -> tuple[list[str], str]:
    """The prompt's numbers (sorted) and the answer's last number."""
    found = re.findall(r"\d+(?:\.\d+)?", row[1])
    answer = re.findall(r"\d+(?:\.\d+)?", row[2])
    return sorted(found), answer[-1] if answer else ""


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


def test_shipped_generated_data_is_not_flagged():
    assert find_reworded(_rows(ROOT / "adapters/extract/eval/benchmark.jsonl")) == []
    rows = _rows(ROOT / "adapters/extract/training/dataset.jsonl")
    # no generated order sentence is flagged; what is, is a general question asked twice in
    # the replay prompts merged from two lists ("seconds in a minute" / "in one minute")
    for pair in find_reworded(rows):
        assert not rows[pair.a][2] and not rows[pair.b][2], pair


def test_what_it_flags_in_the_math_set_is_one_problem_twice():
    """The math generator's v2 set has a few same-problem pairs (other names or objects, or a
    distractor sentence added): each flagged pair has the same numbers and the same answer,
    and the replay questions the base answers alike are not flagged."""
    pairs = find_reworded(MATH)
    assert len(pairs) < len(MATH) // 100
    for pair in pairs:
        a, b = _numbers(MATH[pair.a]), _numbers(MATH[pair.b])
        assert a[1] == b[1] and (set(a[0]) <= set(b[0]) or set(b[0]) <= set(a[0])), pair
        assert MATH[pair.a][2] and MATH[pair.b][2]  # neither is a replay example


def test_exact_copies_are_left_to_the_exact_check():
    row = MATH[0]
    assert find_reworded([row, row]) == []


def _write(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("".join(json.dumps({"instruction": i, "input": x, "output": o,
                                        "difficulty": "easy"}) + "\n" for i, x, o in rows))
    return path


def test_data_check_warns_on_reworded_training_and_fails_reworded_benchmark(tmp_path):
    from locollm.data.check import check_dataset

    original, reworded = PLANTED["reworded by three words"]
    answer = "27 - 23 = 4\n\nThe answer is 4."
    train = _write(tmp_path / "train.jsonl", MATH[1:] + [(INSTRUCTION, original, answer),
                                                         (INSTRUCTION, reworded, answer)])
    bench = _write(tmp_path / "bench.jsonl", [(INSTRUCTION, PLANTED["changed name only"][1],
                                               answer)])
    items = {i.name: i for i in check_dataset(train, bench).items}
    assert items["reworded examples (training)"].status == "warn"
    assert items["benchmark separate from training"].status == "fail"
    flagged = {i for p in find_reworded(MATH) for i in (p.a, p.b)}
    distinct = [row for i, row in enumerate(MATH[1:], 1) if i not in flagged and row[2]]
    clean = {i.name: i for i in check_dataset(_write(tmp_path / "c.jsonl", distinct)).items}
    assert clean["reworded examples (training)"].status == "pass"
