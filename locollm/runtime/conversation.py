"""A whole conversation turned into one prompt: the base's chat template, else the one format.

A base GGUF that ships a chat template (``tokenizer.chat_template``) gets every message through
it, rendered with Jinja exactly as transformers renders it (sandboxed, ``trim_blocks`` and
``lstrip_blocks``, ``add_generation_prompt``); the BOS token is left out because llama.cpp adds
it. Otherwise the conversation is built from the adapter's prompt format, turn by turn with
:func:`locollm.prompt.format_prompt` (the one prompt function), each earlier answer closed with
:func:`locollm.prompt.format_completion`::

    ### Instruction:        system messages (else the adapter's training instruction), the
    {system}                user turn its input; with neither, each user turn is the
                            instruction of its block
    ### Input:
    {user 1}

    ### Response:
    {assistant 1}

    ### Instruction:
    ...

A one-message conversation is exactly the single-turn prompt the adapter was trained on.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import LocollmError
from ..prompt import PromptFormat, format_completion, format_prompt

ROLES = ("system", "developer", "user", "assistant")
TURN_SEPARATOR = "\n\n"  # between an earlier answer and the next turn (plain format)


class ConversationError(LocollmError):
    """The messages cannot make a prompt (order of roles, empty turn, template failure)."""


@dataclass(frozen=True)
class Message:
    """One chat message: ``system`` (``developer`` is read as system), ``user``, ``assistant``."""

    role: str
    content: str


def _turns(messages: Sequence[Message]) -> tuple[list[str], list[tuple[str, str | None]]]:
    """(system texts, [(user text, answer or None)]), consecutive same-role messages joined."""
    system: list[str] = []
    turns: list[list[str | None]] = []
    for i, m in enumerate(messages):
        if m.role not in ROLES:
            raise ConversationError(f"messages[{i}]: unknown role {m.role!r}",
                                    fix=f"use one of {', '.join(ROLES)}")
        text = m.content.strip()
        if m.role in ("system", "developer"):
            if turns:
                raise ConversationError(f"messages[{i}]: a system message after the "
                                        "conversation started", fix="put system messages first")
            if text:
                system.append(text)
        elif m.role == "user":
            if turns and turns[-1][1] is None:
                turns[-1][0] = f"{turns[-1][0]}\n\n{text}"
            else:
                turns.append([text, None])
        else:
            if not turns:
                raise ConversationError(f"messages[{i}]: an assistant message before any "
                                        "user message")
            turns[-1][1] = text if turns[-1][1] is None else f"{turns[-1][1]}\n\n{text}"
    if not turns or turns[-1][1] is not None or not (turns[-1][0] or "").strip():
        raise ConversationError("the last message must be a non-empty user message")
    return system, [(str(u), a) for u, a in turns]


def conversation_prompt(messages: Sequence[Message], fmt: PromptFormat | None = None,
                        instruction: str | None = None, template: str | None = None,
                        bos: str = "", eos: str = "") -> str:
    """The prompt for ``messages``; ``template`` is the base's chat template if it has one.

    ``instruction`` (an adapter's training instruction) stands in for a missing system
    message in the plain format; a chat template has its own default system prompt.
    """
    if template:
        return render_template(template, messages, bos, eos)
    fmt = fmt or PromptFormat()
    system, turns = _turns(messages)
    head = "\n\n".join(system) or instruction
    pieces = []
    for user, answer in turns:
        pieces.append(format_prompt(head, user, fmt) if head else format_prompt(user, "", fmt))
        if answer is not None:
            pieces.append(format_completion(answer, fmt) + ("" if fmt.chat else TURN_SEPARATOR))
    return "".join(pieces)


@functools.lru_cache(maxsize=8)
def _compiled(template: str):
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template)


def render_template(template: str, messages: Sequence[Message], bos: str = "",
                    eos: str = "") -> str:
    """Render a Hugging Face chat template with the generation prompt, without the BOS."""
    from jinja2.exceptions import TemplateError

    _turns(messages)  # the same checks on the order of roles
    rows = [{"role": "system" if m.role == "developer" else m.role, "content": m.content}
            for m in messages]
    try:
        text = _compiled(template).render(messages=rows, add_generation_prompt=True,
                                          bos_token=bos, eos_token=eos)
    except TemplateError as exc:
        raise ConversationError(f"the model's chat template refused the messages ({exc})"
                                ) from exc
    return text[len(bos):] if bos and text.startswith(bos) else text
