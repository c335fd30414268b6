"""The math domain's data: the shipped files are the generator's output and meet the brief."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter

import pytest
from conftest import REPO

from locollm.evaluate.scorers import extract_answer

MATH = REPO / "adapters" / "math"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, MATH / "training" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def files() -> dict[str, list[dict]]:
    return {name: [json.loads(line) for line in (MATH / name).read_text().splitlines()]
            for name in ("training/dataset.jsonl", "eval/benchmark.jsonl", "eval/ood.jsonl")}


def test_shipped_files_are_exactly_what_the_generator_writes(files):
    assert load("generate_data").build() == files


def test_sizes_and_difficulty_mix(files):
    train, bench = files["training/dataset.jsonl"], files["eval/benchmark.jsonl"]
    assert len(train) >= 600 and len(bench) >= 60
    mix = Counter(r["difficulty"] for r in bench)
    assert {k: v / len(bench) for k, v in mix.items()} == {"easy": 0.3, "medium": 0.5,
                                                           "hard": 0.2}
    assert set(Counter(r["difficulty"] for r in train)) == {"easy", "medium", "hard"}


def numbers(row: dict) -> tuple[str, int, int]:
    a, b = map(int, re.findall(r"\d+", row["input"])[:2])
    return row["difficulty"], a, b


def test_benchmark_problems_are_not_in_training(files):
    train = {numbers(r) for r in files["training/dataset.jsonl"]}
    bench = [numbers(r) for r in files["eval/benchmark.jsonl"]]
    assert not train & set(bench) and len(set(bench)) == len(bench)


def test_every_step_is_right_and_the_answer_is_scorable(files):
    validate = load("validate").validate
    for row in files["training/dataset.jsonl"] + files["eval/benchmark.jsonl"]:
        assert validate(row) is None, row
        level, a, b = numbers(row)
        expected = {"easy": a + b, "medium": a - b, "hard": a * b}[level]
        assert row["output"].endswith(f"\n\nThe answer is {expected}.")
        assert extract_answer(row["output"]) == str(expected)


def test_validator_catches_wrong_work():
    validate = load("validate").validate
    good = "Step 1: Add the tens. 30 + 40 = 70\nStep 2: 70 + 5 = 75\n\nThe answer is 75."
    assert validate({"output": good}) is None
    assert "wrong arithmetic: 30 + 40 = 71" in validate({"output": good.replace("= 70",
                                                                                 "= 71")})
    assert "last line" in validate({"output": good.replace("The answer is 75.", "75")})
    assert "last step" in validate({"output": good.replace("answer is 75", "answer is 70")})


def test_edge_cases_are_represented(files):
    rows = files["training/dataset.jsonl"]
    by_level = {lv: [numbers(r)[1:] for r in rows if r["difficulty"] == lv]
                for lv in ("easy", "medium", "hard")}
    assert sum(a % 10 + b % 10 >= 10 for a, b in by_level["easy"]) >= 30  # carries
    assert sum(a % 10 == 0 or b % 10 == 0 for a, b in by_level["easy"]) >= 10  # round numbers
    assert sum(a == b for a, b in by_level["easy"]) >= 3  # doubles
    assert sum(b % 10 > a % 10 for a, b in by_level["medium"]) >= 30  # borrows
    assert sum(b % 10 == 0 for a, b in by_level["medium"]) >= 5  # taking away tens only
    assert sum(a - b < 10 for a, b in by_level["medium"]) >= 5  # few left
    assert sum(a % 10 == 0 for a, b in by_level["hard"]) >= 5  # zero ones
    assert any("bakery" in r["input"] for r in rows) and any("has" in r["input"] for r in rows)


def test_ood_set_is_general_and_scorable(files):
    ood = files["eval/ood.jsonl"]
    assert len(ood) >= 30 and len({r["instruction"] for r in ood}) == len(ood)
    assert set(Counter(r["category"] for r in ood)) == {"capital", "opposite", "counting",
                                                        "general"}
    for row in ood:  # asked bare, as `loco query` asks; a short answer scored exactly
        assert row["instruction"].endswith("?") and row["input"] == ""
        assert re.fullmatch(r"\w+", row["output"])
        assert extract_answer(row["output"]) == row["output"].lower()
    assert extract_answer("A spider has 8 legs.") == "8"
