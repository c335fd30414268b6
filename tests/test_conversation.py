"""Whole conversations as one prompt: the base's chat template as transformers renders it, else
the adapter's prompt format turn by turn."""

from __future__ import annotations

import pytest

from locollm.prompt import PromptFormat, chat_format, format_for_tokenizer, format_prompt
from locollm.runtime.conversation import (
    ConversationError,
    Message,
    conversation_prompt,
    render_template,
)

# Gemma's chat template (system folded into the first user turn), as its tokenizer ships it.
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set first = messages[0]"
    "['content'] + '\n\n' %}{% set loop_messages = messages[1:] %}{% else %}{% set first = '' %}"
    "{% set loop_messages = messages %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (first if loop.first else '') + message['content'] | "
    "trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<start_of_turn>model\n' }}{% endif %}")

CONVERSATION = [Message("system", "Be brief."), Message("user", "What is 2 + 3?"),
                Message("assistant", "5"), Message("user", "And times 4?")]


def test_a_chat_template_renders_as_transformers_renders_it():
    from tiny import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.chat_template = GEMMA_TEMPLATE
    rows = [{"role": m.role, "content": m.content} for m in CONVERSATION]
    expected = tokenizer.apply_chat_template(rows, tokenize=False, add_generation_prompt=True)
    ours = conversation_prompt(CONVERSATION, template=GEMMA_TEMPLATE, bos="<bos>")
    assert "<bos>" + ours == expected  # llama.cpp adds the BOS itself
    assert ours.count("<start_of_turn>user") == 2 and ours.endswith("<start_of_turn>model\n")


def test_a_template_that_refuses_the_messages_is_a_clear_error():
    with pytest.raises(ConversationError, match="alternate"):
        render_template(GEMMA_TEMPLATE, [Message("user", "a"), Message("assistant", "b"),
                                         Message("assistant", "c"), Message("user", "d")])


def test_plain_format_turn_by_turn():
    fmt = PromptFormat()
    prompt = conversation_prompt(CONVERSATION, fmt)
    assert prompt == (format_prompt("Be brief.", "What is 2 + 3?") + "5\n\n"
                      + format_prompt("Be brief.", "And times 4?"))
    # no system message: the adapter's instruction, else each turn is the instruction
    turns = CONVERSATION[1:]
    assert conversation_prompt(turns, fmt, "Solve it.") == (
        format_prompt("Solve it.", "What is 2 + 3?") + "5\n\n"
        + format_prompt("Solve it.", "And times 4?"))
    assert conversation_prompt(turns, fmt) == (format_prompt("What is 2 + 3?") + "5\n\n"
                                               + format_prompt("And times 4?"))
    # one message is exactly the single-turn training prompt
    assert conversation_prompt([Message("user", "Hi")], fmt, "Greet.") == format_prompt(
        "Greet.", "Hi")


def test_chat_parts_format_closes_each_answer_with_its_end_marker():
    from tiny import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.chat_template = GEMMA_TEMPLATE
    fmt = format_for_tokenizer(tokenizer)
    assert fmt == chat_format(fmt.chat)
    prompt = conversation_prompt(CONVERSATION[1:], fmt)
    assert prompt == (format_prompt("What is 2 + 3?", "", fmt) + "5" + fmt.chat.end
                      + format_prompt("And times 4?", "", fmt))


@pytest.mark.parametrize(("messages", "match"), [
    ([], "last message"),
    ([Message("assistant", "hi")], "before any user"),
    ([Message("user", "a"), Message("system", "b"), Message("user", "c")], "system message"),
    ([Message("user", "a"), Message("assistant", "b")], "last message"),
    ([Message("user", "   ")], "non-empty"),
    ([Message("wizard", "a")], "unknown role"),
])
def test_conversations_that_cannot_make_a_prompt(messages, match):
    with pytest.raises(ConversationError, match=match):
        conversation_prompt(messages)


def test_consecutive_messages_of_one_role_join():
    joined = conversation_prompt([Message("user", "a"), Message("user", "b")])
    assert joined == format_prompt("a\n\nb")
