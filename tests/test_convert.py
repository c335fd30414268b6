"""`locollm data convert`: each public format from fixture files in its own layout."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import REPO

from locollm.cli import cli
from locollm.data.convert import convert, last_boxed
from locollm.data.jsonl import load_examples
from locollm.errors import DataError

FIX = REPO / "tests" / "fixtures" / "datasets"


def rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_gsm8k_original_jsonl(tmp_path):
    result = convert("gsm8k", str(FIX / "gsm8k_train.jsonl"), tmp_path / "out.jsonl")
    assert (result.written, result.rows_read) == (3, 4)
    assert result.skipped == {"no '#### answer' line": 1}
    first, _, third = rows(tmp_path / "out.jsonl")
    assert first["input"].startswith("A shop sells 12 pens")
    assert first["output"] == "It sells 12*5 = 60 pens.\n\nThe answer is 60."  # <<>> removed
    assert third["output"].endswith("The answer is 1500.")
    assert first["source"] == str(FIX / "gsm8k_train.jsonl")
    assert len(load_examples(tmp_path / "out.jsonl")) == 3  # valid locollm JSONL


def test_hub_layout_folder_uses_subset_and_split(tmp_path):
    folder = str(FIX / "gsm8k")
    train = convert("gsm8k", folder, tmp_path / "train.jsonl", subset="main")
    test = convert("gsm8k", folder, tmp_path / "test.jsonl", subset="main", split="test")
    assert (train.written, test.written) == (3, 1)
    assert rows(tmp_path / "test.jsonl")[0]["output"].endswith("The answer is 5.")
    with pytest.raises(DataError, match="validation"):
        convert("gsm8k", folder, tmp_path / "x.jsonl", subset="main", split="validation")


def test_math_parquet_boxed_answers_and_levels(tmp_path):
    result = convert("math", str(FIX / "math_algebra_train.parquet"), tmp_path / "m.jsonl")
    assert result.written == 3 and sum(result.skipped.values()) == 1
    out = rows(tmp_path / "m.jsonl")
    assert [r["difficulty"] for r in out] == ["easy", "medium", "hard"]
    assert out[1]["output"].endswith("The answer is \\frac{3}{4}.")
    assert out[0]["category"] == "Algebra"
    assert last_boxed("a \\boxed{1} then \\boxed{\\sqrt{2}}") == "\\sqrt{2}"
    assert last_boxed("no box") is None


def test_aqua_rat_options_and_letter(tmp_path):
    result = convert("aqua_rat", str(FIX / "aqua_rat_train.jsonl"), tmp_path / "a.jsonl")
    assert result.written == 2
    first = rows(tmp_path / "a.jsonl")[0]
    assert first["input"].endswith("Options:\nA) 30\nB) 40\nC) 45\nD) 50\nE) 90")
    assert first["output"].endswith("The answer is B.")


@pytest.mark.parametrize("fmt,name", [("alpaca", "alpaca_data.json"),
                                      ("codealpaca", "code_alpaca_20k.json")])
def test_alpaca_style_json_arrays(tmp_path, fmt, name):
    result = convert(fmt, str(FIX / name), tmp_path / "o.jsonl")
    assert result.written == 2 and result.skipped == {"empty instruction or output": 1}
    source = json.loads((FIX / name).read_text())
    out = rows(tmp_path / "o.jsonl")
    assert [(r["instruction"], r["input"], r["output"]) for r in out] == [
        (s["instruction"], s["input"], s["output"]) for s in source[:2]]


@pytest.mark.parametrize("name", ["squad_train-v1.1.json", "squad_train.parquet"])
def test_squad_nested_original_and_flat_hub(tmp_path, name):
    result = convert("squad", str(FIX / name), tmp_path / "s.jsonl")
    assert result.written == 3
    assert result.skipped == {"no answer (a SQuAD 2.0 unanswerable question)": 1}
    first = rows(tmp_path / "s.jsonl")[0]
    assert first["input"].startswith("Passage: The Amazon is the largest")
    assert first["input"].endswith("Question: What is the largest rainforest on Earth?")
    assert first["output"] == "The Amazon"


def test_limit(tmp_path):
    assert convert("gsm8k", str(FIX / "gsm8k_train.jsonl"), tmp_path / "o.jsonl",
                   limit=2).written == 2


def test_wrong_format_names_the_columns(tmp_path):
    with pytest.raises(DataError, match="does not look like gsm8k: no column") as err:
        convert("gsm8k", str(FIX / "alpaca_data.json"), tmp_path / "o.jsonl")
    assert "instruction" in str(err.value)
    assert not (tmp_path / "o.jsonl").exists()


def test_hub_name_offline_is_a_message_with_a_fix(tmp_path):
    result = CliRunner().invoke(cli, ["data", "convert", "--from", "gsm8k", "openai/gsm8k",
                                      "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2
    assert "hub cannot be reached" in result.output and "fix:" in result.output


def test_missing_local_file_and_unknown_suffix(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["data", "convert", "--from", "alpaca",
                                 str(tmp_path / "nope.json"), "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and "file not found" in result.output
    odd = tmp_path / "data.txt"
    odd.write_text("hello")
    result = runner.invoke(cli, ["data", "convert", "--from", "alpaca", str(odd), "-o",
                                 str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and "cannot read .txt files" in result.output


def test_cli_convert_reports_written_and_skipped(tmp_path):
    result = CliRunner().invoke(cli, ["data", "convert", "--from", "squad",
                                      str(FIX / "squad_train.parquet"), "-o",
                                      str(tmp_path / "s.jsonl")])
    assert result.exit_code == 0, result.output
    assert "wrote 3 examples" in result.output and "skipped 1: no answer" in result.output
