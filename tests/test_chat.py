"""`loco chat`: one turn per line, the conversation so far in the prompt, commands switch
adapters."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_adapters import adapters_runtime, make_adapters_root

from locollm.cli import cli
from locollm.errors import AdapterError, LocollmError
from locollm.prompt import STOP_STRINGS, PromptFormat, format_prompt, parse_response
from locollm.runtime.chat import ChatSession
from locollm.runtime.conversation import Message, conversation_prompt

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory, shared_models):
    with adapters_runtime(tmp_path_factory.mktemp("chat"), shared_models) as rt:
        yield rt


def direct(runtime, adapter, text):
    out = runtime.engine.complete(format_prompt(text), adapter=adapter, max_tokens=24,
                                  stop=STOP_STRINGS)
    return parse_response(out.text)


def test_turns_use_the_prompt_format_of_the_adapter_in_use(runtime):
    session = ChatSession(runtime, max_tokens=24)
    base = session.handle(QUESTION)
    assert base.text == direct(runtime, None, QUESTION) and base.completion.adapter is None
    assert session.handle("/adapter math").text == "now answering with math"
    session.handle("/reset")
    tuned = session.handle(QUESTION)
    assert tuned.completion.adapter == "math" and tuned.text == direct(runtime, "math", QUESTION)
    assert tuned.text != base.text
    session.handle("/base")
    assert session.handle("/reset").text == "conversation cleared"
    assert session.handle(QUESTION).text == base.text


def test_the_conversation_so_far_is_in_the_prompt(runtime):
    session = ChatSession(runtime, max_tokens=12)
    first = session.handle(QUESTION)
    second = session.handle("And of Italy?")
    prompt = conversation_prompt([Message("user", QUESTION), Message("assistant", first.text),
                                  Message("user", "And of Italy?")])
    assert prompt == format_prompt(QUESTION) + first.text + "\n\n" + format_prompt(
        "And of Italy?")
    out = runtime.engine.complete(prompt, max_tokens=12, stop=STOP_STRINGS)
    assert second.text == parse_response(out.text)
    assert [m.role for m in session.history] == ["user", "assistant"] * 2


def test_auto_routes_each_turn(runtime):
    session = ChatSession(runtime, auto=True, max_tokens=8)
    assert session.mode == "auto"
    routed = session.handle("How many apples if I add 2?")
    assert routed.completion.adapter == "math" and routed.route.matched == ("add", "how many")
    assert session.handle(QUESTION).completion.adapter is None
    session.handle("/adapter zero")
    assert session.mode == "zero" and session.handle(QUESTION).route is None


def test_commands(runtime):
    session = ChatSession(runtime, adapter="zero")
    assert session.handle("   ") is None
    assert "/adapter NAME" in session.handle("/help").text
    assert session.handle("/adapters").text == "loaded: math, zero"
    with pytest.raises(AdapterError, match="'nope' is not loaded"):
        session.handle("/adapter nope")
    assert session.mode == "zero"  # unchanged after the error
    with pytest.raises(LocollmError, match="unknown command"):
        session.handle("/dance")
    assert session.handle("/quit").quit and session.handle("/exit").quit


def test_streaming_pieces_make_the_answer(runtime):
    session = ChatSession(runtime, adapter="math", max_tokens=12)
    pieces: list[str] = []
    reply = session.handle(QUESTION, on_text=pieces.append)
    assert len(pieces) > 1 and "".join(pieces) == reply.completion.text
    assert reply.text == direct(runtime, "math", QUESTION)[: len(reply.text)]


def test_an_instruction_makes_the_text_its_input():
    one = [Message("user", "2 + 3")]
    assert conversation_prompt(one, PromptFormat(), "Add.") == format_prompt("Add.", "2 + 3")
    assert conversation_prompt(one, PromptFormat()) == format_prompt("2 + 3")


def test_cli_chat_reads_lines_until_quit(real_base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_adapters_root(Path("adapters"), real_base)
    script = f"{QUESTION}\n/adapter math\n/reset\n{QUESTION}\n/dance\n\n/quit\nnever read\n"
    result = CliRunner().invoke(cli, ["chat", "--max-tokens", "12"], input=script)
    assert result.exit_code == 0, result.output
    answers = result.stdout.splitlines()
    assert answers[0] != answers[3] and answers[1] == "now answering with math"
    assert answers[-1] == "bye" and "never read" not in result.output
    assert "[base: " in result.stderr and "[math: " in result.stderr
    assert "error: unknown command '/dance'" in result.stderr


def test_cli_chat_rejects_an_unknown_adapter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["chat", "--adapter", "nope"], input="")
    assert result.exit_code == 2 and "not found" in result.output
    result = CliRunner().invoke(cli, ["chat", "--adapter", "x", "--auto"], input="")
    assert result.exit_code == 2 and "exclude each other" in result.output
