"""The math domain's data: the shipped files are the generators' output, every step checks, the
benchmark is disjoint in wording from training, and replay prompts are disjoint from ood."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from collections import Counter

import pytest
from conftest import REPO

from locollm.data.check import check_dataset
from locollm.data.neardup import find_duplicates
from locollm.evaluate.scorers import extract_answer

MATH = REPO / "adapters" / "math"


def load(name: str, folder: str = "training"):
    sys.path.insert(0, str(MATH / "training"))
    spec = importlib.util.spec_from_file_location(name, MATH / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def files() -> dict[str, list[dict]]:
    return {name: read(MATH / name) for name in ("training/dataset.jsonl",
                                                 "eval/benchmark.jsonl", "eval/ood.jsonl",
                                                 "training/replay_prompts.jsonl",
                                                 "training/replay.jsonl")}


def test_shipped_files_are_exactly_what_the_generators_write(files):
    gen = load("generate_data")
    config = json.loads((MATH / "training" / "data_config.json").read_text())
    assert gen.build(config["train"], config["seed"], files["training/replay.jsonl"],
                     config["replay_share"]) == files["training/dataset.jsonl"]
    assert load("make_benchmark", "eval").build() == files["eval/benchmark.jsonl"]
    assert load("replay_prompts").rows() == files["training/replay_prompts.jsonl"]


def test_generator_is_deterministic_by_seed():
    gen = load("generate_data")
    assert gen.generate(50, random.Random(3)) == gen.generate(50, random.Random(3))
    assert gen.generate(50, random.Random(3)) != gen.generate(50, random.Random(4))


def test_every_kind_and_difficulty_is_in_training_and_benchmark(files):
    gen = load("generate_data")
    for name in ("training/dataset.jsonl", "eval/benchmark.jsonl"):
        math = [r for r in files[name] if r.get("difficulty") != "replay"]
        assert {r["kind"] for r in math} == set(gen.MIX)
        assert set(Counter(r["difficulty"] for r in math)) == {"easy", "medium", "hard"}
    bench = files["eval/benchmark.jsonl"]
    assert len(bench) >= 50 and {r["evaluation_type"] for r in bench} == {"numeric"}
    assert any(int(extract_answer(r["output"])) >= 100 for r in bench)  # three-digit results


def test_every_step_is_right_and_the_answer_is_scorable(files):
    validate = load("validate").validate
    math = [r for r in files["training/dataset.jsonl"] if r["difficulty"] != "replay"]
    for row in math + files["eval/benchmark.jsonl"]:
        assert validate(row) is None, row
        assert extract_answer(row["output"]) == row["output"].rsplit(" ", 1)[1].rstrip(".")


BAD = {
    "wrong arithmetic: 30 + 40 = 71": ("= 70", "= 71"),
    "last line": ("The answer is 75.", "75"),
    "last step": ("answer is 75", "answer is 70"),
    "not from the question": ("70 + 5 = 75", "68 + 7 = 75"),
    "exactly one": ("Step 2: Add the ones. 70 + 5 = 75", "Step 2: Add the ones, 75"),
}


@pytest.mark.parametrize("reason", BAD)
def test_validator_catches_wrong_work(reason):
    validate = load("validate").validate
    good = {"input": "Ana has 35 cards and gets 40 more.",
            "output": "Step 1: Add the tens. 30 + 40 = 70\nStep 2: Add the ones. 70 + 5 = 75"
                      "\n\nThe answer is 75."}
    assert validate(good) is None
    old, new = BAD[reason]
    bad = {**good, "output": good["output"].replace(old, new)}
    got = validate(bad)
    assert got is not None and reason.split(":")[0] in got, got


def test_validator_rejects_a_division_that_is_not_whole():
    validate = load("validate").validate
    row = {"input": "Share 7 among 2.", "output": "Step 1: Divide. 7 / 2 = 3.5\n\nThe answer "
                                                  "is 3.5."}
    assert "not whole" in validate(row)


def test_benchmark_frames_share_none_with_training():
    gen, bench = load("generate_data"), load("make_benchmark", "eval")
    train = {f for frames in gen.FRAMES.values() for f in frames} | set(gen.DISTRACTORS)
    held = {f for frames in bench.BENCH_FRAMES.values() for f in frames} | set(
        bench.BENCH_DISTRACTORS)
    assert not train & held
    # no frame of one set is a near-copy of a frame of the other (the checker does see one)
    texts = sorted(train) + sorted(held)
    assert not [p for p in find_duplicates(texts, 0.6).pairs
                if (p.a < len(train)) != (p.b < len(train))]
    planted = sorted(train) + [next(iter(gen.FRAMES["add"])).replace("more", "extra")]
    assert [p for p in find_duplicates(planted, 0.6).pairs if p.b == len(train)]


def test_data_check_finds_no_contamination():
    report = check_dataset(MATH / "training" / "dataset.jsonl",
                           MATH / "eval" / "benchmark.jsonl", 400, 50)
    by_name = {c.name: c for c in report.items}
    assert by_name["benchmark separate from training"].status == "pass"
    assert not report.failed


def test_replay_prompts_are_disjoint_from_ood(files):
    prompts = [r["instruction"] for r in files["training/replay_prompts.jsonl"]]
    ood = [r["instruction"] for r in files["eval/ood.jsonl"]]
    assert 150 <= len(prompts) <= 300 and len(set(prompts)) == len(prompts)
    assert {r["category"] for r in files["training/replay_prompts.jsonl"]} == {
        r["category"] for r in files["eval/ood.jsonl"]}

    def crossing(replay: list[str]) -> list:
        found = find_duplicates(replay + ood, 0.8)
        near = [(p.a, p.b) for p in found.pairs]
        exact = [(i, found.rep[i]) for i in range(len(found.rep)) if found.rep[i] != i]
        return [(a, b) for a, b in near + exact if (a < len(replay)) != (b < len(replay))]

    assert not crossing(prompts)
    # an ood question planted with other case and punctuation is caught (the checker's
    # near-duplicate threshold on short prompts is the extract branch's work)
    planted = ood[0].upper().replace("?", " ?!")
    assert crossing(prompts + [planted])


def test_replay_is_mixed_in_at_its_share(files):
    gen = load("generate_data")
    config = json.loads((MATH / "training" / "data_config.json").read_text())
    rows = files["training/dataset.jsonl"]
    replay = [r for r in rows if r["difficulty"] == "replay"]
    assert abs(len(replay) / len(rows) - config["replay_share"]) < 0.02
    assert {r["source"] for r in replay} == {"replay"}
    mixed = gen.mix_replay([{"x": i} for i in range(30)], [{"y": i} for i in range(40)], 0.25,
                           random.Random(0))
    assert sum("y" in r for r in mixed) == 10
