"""`locollm data replay`: general prompts answered by the base itself, as eval would ask them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_jsonl

from locollm.cli import cli
from locollm.data.replay import echoes_question, read_prompts, replay_answers
from locollm.errors import DataError


def test_prompts_are_read_with_their_extra_fields(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"instruction": "What is the capital of Peru?", "category": "capital"},
        {"instruction": "Translate", "input": "hello", "output": "ignored"}])
    first, second = read_prompts(path)
    assert (first.instruction, first.input, dict(first.extra)) == (
        "What is the capital of Peru?", "", {"category": "capital"})
    assert (second.input, second.line, second.extra) == ("hello", 2, ())


@pytest.mark.parametrize("line, message", [
    ('{"input": "x"}', "instruction"),
    ('{"instruction": "  "}', "instruction"),
    ('{"instruction": "q", "input": 3}', "'input' must be a string"),
    ("not json", "invalid JSON"),
    ("[1, 2]", "expected a JSON object"),
])
def test_a_bad_line_is_named_with_its_file_and_line(tmp_path, line, message):
    path = tmp_path / "p.jsonl"
    path.write_text('{"instruction": "fine"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_prompts(path)
    problem = info.value.problem
    assert message in str(info.value) and problem.line == 2 and Path(problem.file) == path


def test_a_missing_or_empty_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_prompts(tmp_path / "none.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="no prompts"):
        read_prompts(tmp_path / "empty.jsonl")


def test_cli_reports_a_bad_prompts_file_without_a_traceback(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"question": "x"}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["data", "replay", str(path), "-o",
                                      str(tmp_path / "out.jsonl")])
    assert result.exit_code != 0 and "p.jsonl" in result.output and "p.jsonl:1:" in result.output
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("question, answer, echo", [
    ("What is the capital of India?", "India is the capital of India.", True),
    ("What is the opposite of hot?", "The opposite of hot is hot.", True),
    ("What is the opposite of old?", "Old is the opposite of old.", True),
    ("Which animal says moo?", "The animal says moo.", True),
    ("What is the capital of Japan?", "Tokyo", False),
    ("What is the capital of China?", "The capital of China is Beijing.", False),
    ("Which is bigger, an elephant or a mouse?", "An elephant.", False),  # a pick, one word
    ("How many legs does a spider have?", "8", False),
    ("How many legs does a spider have?", "A spider has legs.", True),
    ("Is the sun a star?", "Yes, the sun is a star.", False),  # "yes" is new
    ("Translate to French: good morning", "Bonjour", False),
    ("Is the sun hot or cold?", "The sun is hot.", False),  # a pick between two
    ("What city is Mexico's capital?", "Mexico City", False),
    ("Do fish have feathers?", "No. Fish have no feathers.", False),
    ("What word means the opposite of young?", "What word means the opposite of young?", True),
    ("Give the opposite of the word full.", "The word full is the opposite of the word full.",
     True),
])
def test_an_answer_that_only_restates_the_question_is_an_echo(question, answer, echo):
    assert echoes_question(question, answer) is echo


@pytest.mark.slow
def test_echo_answers_of_the_base_are_left_out_unless_kept(tmp_path, real_base):
    """The base restates some capital questions under the plain prompt ("India is the capital
    of India."): those answers are counted and left out, the rest written; kept on request."""
    countries = ["India", "Brazil", "Sweden", "Poland", "Ireland", "Austria", "Kenya", "Chile"]
    prompts = write_jsonl(tmp_path / "p.jsonl", [
        {"instruction": f"What is the capital of {c}?"} for c in countries])
    dropped = replay_answers(prompts, tmp_path / "a.jsonl", max_tokens=16)
    kept = replay_answers(prompts, tmp_path / "b.jsonl", max_tokens=16, keep_echoes=True)
    rows = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    echoes = [r for r in rows if echoes_question(r["instruction"], r["output"])]
    assert echoes, "the base answered no capital question with an echo: pick other prompts"
    assert kept.written == len(rows) and kept.skipped_echo == 0
    assert dropped.skipped_echo == len(echoes) and dropped.written == len(rows) - len(echoes)
    written = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert not any(echoes_question(r["instruction"], r["output"]) for r in written)


@pytest.mark.slow
def test_replay_answers_are_the_base_models_own_greedy_answers(tmp_path, real_base):
    """The written outputs are what the served base says to the same prompt, greedy."""
    from locollm.prompt import PromptFormat, format_prompt, parse_response
    from locollm.runtime.session import open_engine

    prompts = [{"instruction": "Name the capital city of Peru.", "category": "capital"},
               {"instruction": "What rhymes with cat?"}]
    out = tmp_path / "replay.jsonl"
    result = replay_answers(write_jsonl(tmp_path / "p.jsonl", prompts), out, max_tokens=24)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert result.written == len(rows) == 2 and result.output == out
    assert [r["instruction"] for r in rows] == [p["instruction"] for p in prompts]
    assert rows[0]["category"] == "capital" and {r["source"] for r in rows} == {"replay"}
    fmt = PromptFormat()
    engine, _ = open_engine(None, [])
    try:
        for row in rows:
            text = engine.complete(format_prompt(row["instruction"], "", fmt), max_tokens=24,
                                   stop=fmt.stop).text
            assert row["output"] == parse_response(text, fmt) != ""
    finally:
        engine.close()
