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
    clean = {i.name: i for i in check_dataset(_write(tmp_path / "c.jsonl", MATH[1:])).items}
    assert clean["reworded examples (training)"].status == "pass"
