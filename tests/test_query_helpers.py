"""`loco query --votes N` (self-consistency) and re-reading (RE2)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from helpers_adapters import make_adapters_root

from locollm.cli import cli
from locollm.runtime.query import majority, query, reread


def test_reread_gives_the_question_twice():
    assert reread(" What is 2 + 3? ") == "What is 2 + 3?\nRead the question again: What is 2 + 3?"


def test_majority_votes_on_the_extracted_answer():
    answers = ["3 + 4 = 7. The answer is 7.", "The answer is 8.", "So 7", "The answer is 8."]
    assert majority(answers) == (0, 2)  # 7 twice, 8 twice: a tie goes to the first seen
    assert majority(answers[1:]) == (0, 2)  # 8 twice, 7 once
    assert majority(["The answer is 7.", "7", "I think 9"]) == (0, 2)
    assert majority(["a", "b"]) == (0, 1)


def test_votes_sample_several_answers_and_pick_the_majority(real_base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_adapters_root(Path("adapters"), real_base)
    result = query("Tom has 3 apples and gets 4 more. How many now?", adapter="math",
                   max_tokens=12, votes=3, reread_question=True)
    assert len(result.samples) == 3 and result.settings["votes"] == 3
    assert result.settings["temperature"] == 0.7 and result.settings["reread"] is True
    assert result.answer in result.samples
    assert result.settings["majority"] == majority(result.samples)[1]
    plain = query("Tom has 3 apples.", adapter="math", max_tokens=8)
    assert plain.samples is None and plain.settings["reread"] is False  # the default
    assert plain.completion.prompt_tokens < query("Tom has 3 apples.", adapter="math",
                                                  max_tokens=8, reread_question=True
                                                  ).completion.prompt_tokens
    cli_run = CliRunner().invoke(cli, ["query", "What is 2 + 2?", "--adapter", "math",
                                       "--votes", "2", "--max-tokens", "8", "--reread"])
    assert cli_run.exit_code == 0, cli_run.output
    assert "/2 votes]" in cli_run.stderr
