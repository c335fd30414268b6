"""`locollm score`: answers made anywhere, scored with eval's scorers; benchmark files; the
converters' evaluation_type."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import REPO, write_jsonl

from locollm.cli import cli
from locollm.data.convert import convert
from locollm.errors import DataError
from locollm.evaluate.benchmark import load_benchmark
from locollm.evaluate.predictions import score_predictions
from locollm.evaluate.scorers import score_item
from locollm.paths import sha256_file

FIX = REPO / "tests" / "fixtures" / "datasets"

BENCH = [
    {"id": "sum", "instruction": "What is 2 + 3?", "output": "The answer is 5.",
     "difficulty": "easy"},
    {"id": "opp", "instruction": "What is the opposite of left?", "expected_output": "right"},
    {"id": "mc", "instruction": "Pick", "input": "Q?\nOptions:\nA) 21\nB) 24",
     "output": "The answer is B.", "evaluation_type": "multiple_choice", "difficulty": "hard"},
    {"id": "code", "instruction": "Write add", "evaluation_type": "code",
     "tests": ["assert add(1, 2) == 3"]},
]
PREDS = {"sum": "The answer is 5 apples.", "opp": "The opposite of right is left.",
         "mc": "I think 24. The answer is A.",
         "code": "```python\ndef add(a, b):\n    return a + b\n```"}


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def files(tmp_path):
    bench = write_jsonl(tmp_path / "bench.jsonl", BENCH)
    order = ["code", "opp", "sum", "mc"]  # shuffled: matched by id
    preds = write_jsonl(tmp_path / "preds.jsonl", [{"id": k, "prediction": PREDS[k]}
                                                   for k in order])
    return bench, preds


def test_score_matches_by_id_and_prints_each_verdict(files, tmp_path):
    bench, preds = files
    out = tmp_path / "result.json"
    result = run("score", str(preds), "--benchmark", str(bench), "--output", str(out))
    assert result.exit_code == 0, result.output
    assert "2/4 = 50.0%" in result.output
    assert "id opp: WRONG (contains) expected 'right', got 'left'" in result.output
    assert "id mc: WRONG (multiple_choice) expected 'B', got 'A'" in result.output
    assert "id code: right (code)" in result.output
    data = json.loads(out.read_text())
    assert data["benchmark_sha256"] == sha256_file(bench) and data["runtime"] == "predictions"
    assert data["settings"]["predictions_sha256"] == sha256_file(preds)
    assert [i["id"] for i in data["items"]] == ["sum", "opp", "mc", "code"]
    assert data["by_difficulty"] == {"easy": 1.0, "hard": 0.0}


def test_score_json_for_programs(files):
    bench, preds = files
    result = run("score", str(preds), "--benchmark", str(bench), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["correct"], data["total"]) == (2, 4)
    assert {i["id"]: i["correct"] for i in data["items"]} == {"sum": True, "opp": False,
                                                              "mc": False, "code": True}


def test_without_ids_predictions_match_line_by_line(tmp_path):
    bench = write_jsonl(tmp_path / "b.jsonl", [{"output": "7"}, {"output": "Paris"}])
    preds = write_jsonl(tmp_path / "p.jsonl", [{"prediction": "Seven."},
                                               {"prediction": "It is Paris."}])
    assert score_predictions(preds, bench).correct == 2
    write_jsonl(tmp_path / "p.jsonl", [{"prediction": "It is Paris."}, {"prediction": "7"}])
    assert score_predictions(preds, bench).correct == 0


@pytest.mark.parametrize(("preds", "message"), [
    ([{"id": "sum", "prediction": "5"}], "have no prediction"),
    ([{"id": k, "prediction": "x"} for k in PREDS] + [{"id": "sum", "prediction": "y"}],
     "predicted twice"),
    ([{"id": k, "prediction": "x"} for k in PREDS] + [{"id": "zzz", "prediction": "y"}],
     "not in the benchmark"),
    ([{"id": "sum", "answer": "5"}], "no string 'prediction'"),
])
def test_bad_predictions_are_clear_errors(files, tmp_path, preds, message):
    bench, _ = files
    path = write_jsonl(tmp_path / "bad.jsonl", preds)
    result = run("score", str(path), "--benchmark", str(bench))
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_broken_line_is_located(files, tmp_path):
    bench, _ = files
    path = tmp_path / "broken.jsonl"
    path.write_text('{"prediction": "a"}\n{"prediction": \n')
    result = run("score", str(path), "--benchmark", str(bench))
    assert result.exit_code == 2 and f"{path}:2: " in result.output


def test_count_mismatch_without_ids(tmp_path):
    bench = write_jsonl(tmp_path / "b.jsonl", [{"output": "7"}, {"output": "8"}])
    preds = write_jsonl(tmp_path / "p.jsonl", [{"prediction": "7"}])
    with pytest.raises(DataError, match="1 predictions for 2 benchmark items"):
        score_predictions(preds, bench)


def test_judge_items_refuse_to_start_without_a_judge(tmp_path):
    bench = write_jsonl(tmp_path / "b.jsonl", [{"output": "x", "evaluation_type": "judge"}])
    preds = write_jsonl(tmp_path / "p.jsonl", [{"prediction": "y"}])
    result = run("score", str(preds), "--benchmark", str(bench))
    assert result.exit_code == 2 and "--judge-url" in result.output


def test_scorer_flag_sets_the_default(tmp_path):
    bench = write_jsonl(tmp_path / "b.jsonl", [{"output": "Paris"}])
    preds = write_jsonl(tmp_path / "p.jsonl", [{"prediction": "It is Paris."}])
    assert "1/1" in run("score", str(preds), "--benchmark", str(bench)).output
    exact = run("score", str(preds), "--benchmark", str(bench), "--scorer", "exact")
    assert "0/1" in exact.output and "(exact)" in exact.output


# ---------------------------------------------------------------------------- benchmark files
def test_benchmark_problems_are_collected_with_their_lines(tmp_path):
    path = write_jsonl(tmp_path / "b.jsonl", [
        {"instruction": "q", "output": "1"},
        {"instruction": "q", "output": "1", "evaluation_type": "fuzzy"},
        {"instruction": "q", "evaluation_type": "code"},
        {"instruction": "q"},
        {"output": "3"},
    ])
    with pytest.raises(DataError) as info:
        load_benchmark(path)
    err = info.value
    assert err.problem.line == 2 and "4 problem(s)" in err.problem.message
    found = {p.line: p.message for p in err.problems}
    assert "unknown evaluation_type 'fuzzy'" in err.problem.message
    assert "a code item needs 'tests'" in found[3]
    assert "'output' must be a non-empty string" in found[4]
    assert "'instruction' is missing" in found[5]
    assert f"{path}:5: " in err.render()
    assert len(load_benchmark(write_jsonl(tmp_path / "ok.jsonl", [{"output": "3"}]),
                              need_prompt=False)) == 1


def test_limit_and_empty_benchmark(tmp_path):
    path = write_jsonl(tmp_path / "b.jsonl", [{"instruction": "q", "output": str(i)}
                                              for i in range(5)])
    assert [i.reference for i in load_benchmark(path, limit=2)] == ["0", "1"]
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no benchmark items"):
        load_benchmark(tmp_path / "empty.jsonl")


# ------------------------------------------------------------------------------- converters
@pytest.mark.parametrize(("fmt", "name", "kind", "wrong"), [
    ("gsm8k", "gsm8k_train.jsonl", "numeric", "The answer is 123456."),
    ("math", "math_algebra_train.parquet", "math", "The answer is 987654."),
    ("aqua_rat", "aqua_rat_train.jsonl", "multiple_choice", "The answer is E."),
    ("squad", "squad_train-v1.1.json", "contains", "I do not know."),
    ("alpaca", "alpaca_data.json", "rouge", "zebra quantum violin"),
])
def test_converted_rows_carry_the_scorer_their_answers_need(tmp_path, fmt, name, kind, wrong):
    out = convert(fmt, str(FIX / name), tmp_path / "out.jsonl").output
    items = load_benchmark(out)
    assert {i.evaluation_type for i in items} == {kind}
    for it in items:  # each reference scores right as a reply; a wrong answer does not
        if kind == "multiple_choice" and "The answer is E." in it.reference:
            continue
        assert score_item(it.reference, it).correct, (fmt, it.reference)
        assert not score_item(wrong, it).correct, (fmt, it.reference)
