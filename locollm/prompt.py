"""The one prompt format. Training, eval, query, chat and the server all call these functions.

Gemma 3 270M is a base model and its GGUF has no chat template, so locollm uses a documented
plain template (``alpaca``)::

    ### Instruction:
    {instruction}

    ### Input:
    {input}

    ### Response:
    {output}<eos>

The ``### Input:`` block is left out when the input is empty. The model is trained to end its
answer with the end-of-sequence token; ``STOP_STRINGS`` also cut a run-on answer at the next
section header.
"""

from __future__ import annotations

from dataclasses import dataclass

PLAIN_FORMAT = "alpaca"
STOP_STRINGS: tuple[str, ...] = ("\n### ", "<eos>", "<end_of_turn>")


@dataclass(frozen=True)
class PromptFormat:
    """How a base model wants its prompts; stored in every adapter's metadata."""

    name: str = PLAIN_FORMAT
    stop: tuple[str, ...] = STOP_STRINGS


def format_prompt(instruction: str, input: str = "", fmt: PromptFormat | None = None) -> str:
    """Turn an (instruction, input) pair into the text the model continues."""
    fmt = fmt or PromptFormat()
    if fmt.name != PLAIN_FORMAT:
        raise ValueError(f"unknown prompt format {fmt.name!r}")
    parts = [f"### Instruction:\n{instruction.strip()}\n\n"]
    if input and input.strip():
        parts.append(f"### Input:\n{input.strip()}\n\n")
    parts.append("### Response:\n")
    return "".join(parts)


def format_completion(output: str) -> str:
    """The text the model should produce after the prompt (the EOS token is added by training)."""
    return output.strip()


def parse_response(text: str, fmt: PromptFormat | None = None) -> str:
    """Cut a raw generation at the first stop string and strip it: the user-facing answer."""
    fmt = fmt or PromptFormat()
    cut = len(text)
    for stop in fmt.stop:
        pos = text.find(stop)
        if pos != -1:
            cut = min(cut, pos)
    return text[:cut].strip()
