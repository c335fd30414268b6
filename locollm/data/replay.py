"""Replay data: general prompts answered by the base model itself, to mix into a training set.

An adapter trained only on its domain drifts on everything else (the out-of-domain drop eval
reports). Mixing in examples whose outputs are the *base model's own* greedy answers teaches
the adapter to leave those prompts alone: the loss on them is lowest when the LoRA changes
nothing. The answers come from llama.cpp with the exact prompt format training and eval use
(:func:`locollm.prompt.format_prompt`), greedy, so a replay example is what the base would
say when served.

A prompts file is JSONL with a string ``instruction`` and an optional ``input`` per line (an
``output`` there is ignored and replaced). Other fields are kept.

An *echo* answer is left out by default: one that only restates the question ("India is the
capital of India." to "What is the capital of India?", "The opposite of hot is hot."). A small
base gives such answers under a plain prompt where it does not know or does not follow; they
are not the base's knowledge but a failure mode, and an adapter trained on a few of them
learns the pattern and repeats it on questions the base got right (the extract adapter's run
3 answered "Japan is the capital of Japan." out of domain, where the base said "Tokyo").
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, Problem
from ..prompt import PromptFormat, format_prompt, parse_response
from .jsonl import write_jsonl

PROMPT_FIX = 'write one {"instruction": "...", "input": ""} object per line'

# The "source" of an example answered by the base itself (replay data, not the domain)
REPLAY_SOURCE = "replay"


@dataclass(frozen=True)
class ReplayPrompt:
    """One prompt to answer, with where it came from."""

    instruction: str
    input: str = ""
    line: int = 0
    extra: tuple[tuple[str, object], ...] = ()


@dataclass
class ReplayResult:
    """What :func:`replay_answers` wrote."""

    output: Path
    written: int
    skipped_empty: int  # prompts the base answered with nothing (left out)
    skipped_echo: int  # answers that only restate the question (left out, see echoes_question)
    truncated: int  # answers cut at max_tokens (kept, but worth a look)


def read_prompts(path: str | Path) -> list[ReplayPrompt]:
    """Read a prompts JSONL, every bad line collected before raising.

    Raises:
        DataError: missing or unreadable file, a line without a string ``instruction``, a
            non-string ``input``, or no prompts at all.
    """
    from ..evaluate.benchmark import raise_problems, read_objects

    path = Path(path)
    objects, problems = read_objects(path, "prompts file", PROMPT_FIX)
    prompts = []
    for number, obj in objects:
        if not isinstance(obj, dict):
            problems.append(Problem("expected a JSON object", path, number, PROMPT_FIX))
            continue
        instruction, text = obj.get("instruction"), obj.get("input", "") or ""
        if not isinstance(instruction, str) or not instruction.strip():
            problems.append(Problem("no non-empty string 'instruction'", path, number,
                                    PROMPT_FIX))
            continue
        if not isinstance(text, str):
            problems.append(Problem("'input' must be a string", path, number,
                                    'make "input" a string (or "")'))
            continue
        extra = tuple((k, v) for k, v in obj.items() if k not in ("instruction", "input",
                                                                   "output"))
        prompts.append(ReplayPrompt(instruction, text, number, extra))
    raise_problems(problems, "prompts file")
    if not prompts:
        raise DataError("no prompts", file=path, fix=PROMPT_FIX)
    return prompts


_WORD = re.compile(r"[^\W_]+")
# Words that answer a yes/no question: never stop words here, so "No, fish have no feathers."
# to "Do fish have feathers?" adds a word
_ANSWERING = frozenset({"yes", "no", "not", "nor", "never", "none", "nothing", "nobody",
                        "neither", "cannot"})
# Auxiliaries the kept list lacks ("How many legs does a spider have?")
_AUXILIARY = frozenset({"do", "does", "did", "doing", "done"})


@functools.cache
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return (ENGLISH_STOP_WORDS | _AUXILIARY) - _ANSWERING


def _content(text: str) -> list[str]:
    stop = _stop_words()
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in stop]


def echoes_question(question: str, answer: str) -> bool:
    """Whether ``answer`` only restates ``question``.

    An echo has two or more content words, none of them new, and either says one of them twice
    ("India is the capital of India.") or repeats all of the question's ("The animal says
    moo." to "Which animal says moo?"). Content words are the words less scikit-learn's English
    stop words (a kept list rather than one of our own), yes/no words counted. So a pick from
    the question is not an echo: "An elephant." (one word), "The sun is hot." to "Is the sun
    hot or cold?" (leaves "cold" out), "Mexico City" to "What city is Mexico's capital?".
    """
    asked, said = set(_content(question)), _content(answer)
    distinct = set(said)
    if len(distinct) < 2 or not distinct <= asked:
        return False
    return len(said) > len(distinct) or asked <= distinct


def answer_prompts(engine, prompts: list[ReplayPrompt], fmt: PromptFormat,
                   max_tokens: int = 96) -> list[tuple[str, bool]]:
    """The engine's greedy answer to each prompt (the bare base), and whether it hit the limit."""
    from ..evaluate.decode import Request, decode

    requests = [Request(format_prompt(p.instruction, p.input, fmt), None, max_tokens,
                        stop=fmt.stop) for p in prompts]
    completions = decode(engine, requests)
    return [(parse_response(c.text, fmt), c.finish_reason == "length") for c in completions]


def replay_answers(prompts_path: str | Path, output: str | Path, *,
                   base_model: str | None = None, max_tokens: int = 96,
                   fmt: PromptFormat | None = None, keep_echoes: bool = False
                   ) -> ReplayResult:
    """Answer every prompt in ``prompts_path`` with the base model and write a training JSONL.

    Args:
        prompts_path: JSONL of ``instruction`` (+ optional ``input``) objects.
        output: instruction/input/output JSONL to write (atomically).
        base_model: the base to answer with (default: the embedded Gemma 3 270M).
        max_tokens: longest answer; replay answers should be short like the adapter's.
        fmt: prompt format (default: the plain format training and eval use for this base).
        keep_echoes: keep answers that only restate the question (see
            :func:`echoes_question`); by default they are left out and counted.

    Raises:
        DataError: a bad prompts file (see :func:`read_prompts`), or every answer empty.
    """
    from ..runtime.session import open_engine

    if max_tokens < 1:
        raise DataError(f"max_tokens must be at least 1, got {max_tokens}")
    prompts = read_prompts(prompts_path)
    fmt = fmt or PromptFormat()
    engine, _ = open_engine(base_model, [])
    try:
        answers = answer_prompts(engine, prompts, fmt, max_tokens)
    finally:
        engine.close()
    rows, empty, echo, truncated = [], 0, 0, 0
    for prompt, (text, cut) in zip(prompts, answers, strict=True):
        if not text:
            empty += 1
            continue
        if not keep_echoes and echoes_question(f"{prompt.instruction} {prompt.input}", text):
            echo += 1
            continue
        truncated += cut
        rows.append({"instruction": prompt.instruction, "input": prompt.input, "output": text,
                     **dict(prompt.extra), "source": REPLAY_SOURCE})
    if not rows:
        raise DataError("the base model answered every prompt with nothing"
                        + (" or an echo of the question" if echo else ""),
                        file=Path(prompts_path), fix="check the prompts and --max-tokens")
    path = write_jsonl(output, rows)
    return ReplayResult(path, len(rows), empty, echo, truncated)


def mix_replay(rows: list[dict], replay: list[dict], share: float, rng: random.Random
               ) -> list[dict]:
    """``rows`` plus replay examples making up ``share`` of the result, shuffled.

    Shared by the adapters' data generators, so every domain mixes replay the same way.
    """
    want = min(len(replay), round(len(rows) * share / (1 - share))) if share > 0 else 0
    picked = rng.sample(replay, want)
    mixed = rows + [{**r, "difficulty": "replay"} for r in picked]
    rng.shuffle(mixed)
    return mixed
