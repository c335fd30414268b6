"""The ``json`` scorer: the reply's first JSON object against the reference, normalised."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import write_jsonl

from locollm.cli import cli
from locollm.evaluate.benchmark import BenchItem, load_benchmark
from locollm.evaluate.jsonscore import first_object
from locollm.evaluate.scorers import score_item

REF = {"name": "Ana Lopez", "item": "printer paper", "quantity": 3, "date": "March 4",
       "amount": 42.5}


def item(ref: dict = REF) -> BenchItem:
    return BenchItem(1, [json.dumps(ref)], "Extract the order as JSON.",
                     evaluation_type="json")


@pytest.mark.parametrize("reply", [
    json.dumps(REF),
    # keys reordered, number written another way, case and spacing in a string
    '{"amount": 42.50, "date": "march  4", "quantity": 3.0, "item": "Printer Paper", '
    '"name": "ana lopez"}',
    # text and a code fence around the object; a money string for the amount
    'Here is the JSON:\n```json\n{"name": "Ana Lopez", "item": "printer paper", "quantity": 3, '
    '"date": "March 4", "amount": "$42.50"}\n```\nDone.',
])
def test_right_replies_pass(reply: str) -> None:
    score = score_item(reply, item())
    assert score.scorer == "json"
    assert score.correct, score.detail


@pytest.mark.parametrize(("reply", "why"), [
    ('{"name": "Ana Lopez", "item": "printer paper", "quantity": 4, "date": "March 4", '
     '"amount": 42.5}', "quantity"),
    ('{"name": "Ana Lopez", "item": "printer paper", "quantity": 3, "date": "March 4"}',
     "missing amount"),
    ('{"name": "Ana Lopez", "item": "printer paper", "quantity": 3, "date": "March 4", '
     '"amount": 42.5, "note": "rush"}', "extra note"),
    ('{"name": "Ana Lopez", "item": "printer paper", "quantity": "3", "date": "March 4", '
     '"amount": null}', "amount"),
    ("name: Ana Lopez, item: printer paper", "no JSON object"),
    ('{"name": "Ana Lopez", "item": "printer paper", "quantity": 3,', "no JSON object"),
])
def test_wrong_replies_fail_and_say_why(reply: str, why: str) -> None:
    score = score_item(reply, item())
    assert not score.correct
    assert why in score.detail


def test_null_must_stay_null() -> None:
    ref = {**REF, "date": None}
    assert score_item(json.dumps(ref), item(ref)).correct
    assert not score_item(json.dumps({**ref, "date": "today"}), item(ref)).correct
    assert not score_item(json.dumps({**ref, "date": ""}), item(ref)).correct


def test_first_object_skips_braces_that_are_not_json() -> None:
    assert first_object('use {braces} then {"a": 1} and {"b": 2}') == {"a": 1}
    assert first_object("[1, 2]") is None


def test_score_cli_accepts_json(tmp_path) -> None:
    bench = write_jsonl(tmp_path / "b.jsonl", [
        {"id": "1", "instruction": "x", "output": json.dumps(REF), "evaluation_type": "json"},
        {"id": "2", "instruction": "y", "output": json.dumps(REF)}])
    preds = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "1", "prediction": json.dumps({**REF, "amount": 42.50})},
        {"id": "2", "prediction": json.dumps({**REF, "amount": 1})}])
    assert [i.evaluation_type for i in load_benchmark(bench)] == ["json", None]
    result = CliRunner().invoke(cli, ["score", str(preds), "--benchmark", str(bench),
                                      "--scorer", "json", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["correct"], report["total"]) == (1, 2)
