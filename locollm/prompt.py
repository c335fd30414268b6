"""The one prompt format. Training, eval, query, chat and the server all call these functions.

A base model that ships a chat template (an instruct model such as Qwen2.5-3B-Instruct) is
prompted through that template. Gemma 3 270M is a base model and its GGUF has no chat template,
so locollm uses a documented plain template (``alpaca``)::

    ### Instruction:
    {instruction}

    ### Input:
    {input}

    ### Response:
    {output}<eos>

The ``### Input:`` block is left out when the input is empty. The model is trained to end its
answer with the end-of-sequence token; ``STOP_STRINGS`` also cut a run-on answer at the next
section header.

A chat template is a Jinja program that needs the tokenizer to run, but eval and the server
only have the adapter's metadata and a GGUF. So at training time the template is rendered once
around sentinel strings (:func:`format_for_tokenizer`), which splits it into three literal
pieces: the text before the user message, the text between the user message and the answer
(the generation prompt), and the end-of-turn marker after the answer. The format's *name*
carries those pieces (``chat:`` followed by their JSON), so every reader that rebuilds
``PromptFormat(meta.prompt_format, meta.stop)`` formats exactly as training did, with no
tokenizer and no extra file.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

PLAIN_FORMAT = "alpaca"
CHAT_PREFIX = "chat:"
STOP_STRINGS: tuple[str, ...] = ("\n### ", "<eos>", "<end_of_turn>")

# Stand-ins for the user message and the answer when a chat template is split into pieces;
# plain words so that templates which strip or trim the content leave them intact.
_USER = "LocollmUserSentinel7f3a"
_ANSWER = "LocollmAnswerSentinel7f3a"


@dataclass(frozen=True)
class ChatParts:
    """A chat template reduced to one single-turn exchange: ``user + message + model``."""

    user: str  # before the user message (a default system prompt, the user header)
    model: str  # after the user message, up to where the answer starts
    end: str  # after the answer: the end-of-turn marker


@dataclass(frozen=True)
class PromptFormat:
    """How a base model wants its prompts; stored in every adapter's metadata."""

    name: str = PLAIN_FORMAT
    stop: tuple[str, ...] = STOP_STRINGS

    @property
    def chat(self) -> ChatParts | None:
        """The chat template's pieces, or None for the plain format."""
        return _parse_chat(self.name) if self.name.startswith(CHAT_PREFIX) else None

    @property
    def label(self) -> str:
        """A short name for logs: ``alpaca`` or ``chat``."""
        return "chat" if self.chat else self.name

    @property
    def instruction_marker(self) -> str:
        """Text that opens a prompt: what response-only loss masking searches for."""
        return self.chat.user if self.chat else "### Instruction:\n"

    @property
    def response_marker(self) -> str:
        """Text right before the answer: where the loss starts."""
        parts = self.chat
        if parts is None:
            return "### Response:\n"
        model = parts.model
        if parts.end and parts.end in model:  # "<end_of_turn>\n<start_of_turn>model\n"
            model = model[model.index(parts.end) + len(parts.end):].lstrip("\n")
        return model or parts.model


@functools.lru_cache(maxsize=32)
def _parse_chat(name: str) -> ChatParts:
    try:
        data = json.loads(name[len(CHAT_PREFIX):])
        return ChatParts(data["user"], data["model"], data["end"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"unreadable chat prompt format {name[:60]!r}...") from exc


def chat_format(parts: ChatParts) -> PromptFormat:
    """The PromptFormat for a chat template's pieces; stops at its end-of-turn marker."""
    name = CHAT_PREFIX + json.dumps({"user": parts.user, "model": parts.model, "end": parts.end},
                                    ensure_ascii=False, separators=(",", ":"))
    stop = tuple(s for s in (parts.end.strip(), "<eos>") if s)
    return PromptFormat(name, stop)


def user_message(instruction: str, input: str = "") -> str:
    """The single user message of a chat prompt: the instruction, then the input if any."""
    if input and input.strip():
        return f"{instruction.strip()}\n\n{input.strip()}"
    return instruction.strip()


def format_prompt(instruction: str, input: str = "", fmt: PromptFormat | None = None) -> str:
    """Turn an (instruction, input) pair into the text the model continues."""
    fmt = fmt or PromptFormat()
    parts = fmt.chat
    if parts is not None:
        return parts.user + user_message(instruction, input) + parts.model
    if fmt.name != PLAIN_FORMAT:
        raise ValueError(f"unknown prompt format {fmt.name!r}")
    pieces = [f"### Instruction:\n{instruction.strip()}\n\n"]
    if input and input.strip():
        pieces.append(f"### Input:\n{input.strip()}\n\n")
    pieces.append("### Response:\n")
    return "".join(pieces)


def format_completion(output: str, fmt: PromptFormat | None = None) -> str:
    """The text the model should produce after the prompt.

    Plain format: the answer alone (training appends the EOS token). Chat format: the answer
    and the template's end-of-turn marker, which is what ends a turn at inference.
    """
    parts = (fmt or PromptFormat()).chat
    return output.strip() + (parts.end if parts else "")


def parse_response(text: str, fmt: PromptFormat | None = None) -> str:
    """Cut a raw generation at the first stop string and strip it: the user-facing answer."""
    fmt = fmt or PromptFormat()
    stops = list(fmt.stop)
    if fmt.chat and fmt.chat.end.strip():
        stops.append(fmt.chat.end.strip())
    cut = len(text)
    for stop in stops:
        pos = text.find(stop)
        if pos != -1:
            cut = min(cut, pos)
    return text[:cut].strip()


def format_for_tokenizer(tokenizer) -> PromptFormat:
    """The prompt format for a base model: its chat template if it has one, else ``alpaca``.

    The template is rendered around sentinel messages and cut into :class:`ChatParts`. The BOS
    token is left out because the tokenizer (and llama.cpp) add it themselves.

    Raises:
        ValueError: the template cannot be reduced to one user turn and one answer.
    """
    if not getattr(tokenizer, "chat_template", None):
        return PromptFormat()
    user = [{"role": "user", "content": _USER}]
    prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": _ANSWER}],
                                         tokenize=False)
    if prompt.count(_USER) != 1 or full.count(_ANSWER) != 1:
        raise ValueError("the chat template does not render a single user message verbatim")
    before, after = prompt.split(_USER)
    bos = getattr(tokenizer, "bos_token", None)
    if bos and before.startswith(bos):
        before = before[len(bos):]
    end = full.split(_ANSWER, 1)[1].rstrip()
    return chat_format(ChatParts(before, after, end))
