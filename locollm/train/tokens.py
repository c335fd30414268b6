"""Turn examples into token ids with a loss mask, and group them into padded batches.

The prompt comes from :func:`locollm.prompt.format_prompt` (the same function eval and serving
use); the loss covers only the answer and what ends it: the end-of-sequence token for the plain
format, the end-of-turn marker for a chat template.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..data.jsonl import Example
from ..errors import DataError, Problem
from ..prompt import PromptFormat, format_completion, format_prompt

IGNORE = -100


@dataclass
class TokenizedExample:
    """Token ids of prompt + answer; the loss starts at ``answer_start``."""

    input_ids: list[int]
    answer_start: int
    line: int

    @property
    def n_answer(self) -> int:
        """Tokens that carry a label."""
        return len(self.input_ids) - self.answer_start


def tokenize_examples(examples: list[Example], tokenizer, max_seq_len: int,
                      source: str = "dataset",
                      fmt: PromptFormat | None = None) -> list[TokenizedExample]:
    """Tokenize all examples; every one longer than ``max_seq_len`` is reported at once."""
    fmt = fmt or PromptFormat()
    prompts = [format_prompt(e.instruction, e.input, fmt) for e in examples]
    answers = [format_completion(e.output, fmt) for e in examples]
    prompt_ids = tokenizer(prompts, add_special_tokens=True)["input_ids"]
    answer_ids = tokenizer(answers, add_special_tokens=False)["input_ids"]
    # A chat answer already ends with the template's end-of-turn marker.
    tail = [] if fmt.chat and fmt.chat.end else [tokenizer.eos_token_id]
    out, too_long = [], []
    for example, p, a in zip(examples, prompt_ids, answer_ids, strict=True):
        ids = list(p) + list(a) + tail
        if len(ids) > max_seq_len:
            too_long.append(Problem(f"example is {len(ids)} tokens, over max_seq_len "
                                    f"{max_seq_len}", source, example.line,
                                    "shorten it, or raise --max-seq-len"))
            continue
        out.append(TokenizedExample(ids, len(p), example.line))
    if too_long:
        raise DataError(f"{len(too_long)} example(s) exceed max_seq_len {max_seq_len}",
                        file=source, line=too_long[0].line, fix=too_long[0].fix,
                        problems=too_long[1:10])
    return out


def length_grouped_batches(items: list[TokenizedExample], batch_size: int,
                           rng: random.Random) -> list[list[int]]:
    """Shuffle, then sort within windows of 32 batches by length: little padding, still random.

    Returns lists of indices into ``items``; batch order is shuffled too.
    """
    order = list(range(len(items)))
    rng.shuffle(order)
    window = batch_size * 32
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: len(items[i].input_ids))
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(batch: list[TokenizedExample], pad_id: int):
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` tensors."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    for row, e in enumerate(batch):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        mask[row, :n] = 1
        labels[row, e.answer_start:n] = torch.tensor(e.input_ids[e.answer_start:])
    return ids, mask, labels
