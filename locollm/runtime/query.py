"""One-shot queries: ``loco query "..." [--adapter NAME | --no-adapter] [--save-log FILE]``.

Two inference-time helpers: re-reading (RE2, Xu et al. 2024: the question is given twice,
"Read the question again: ...", so every token of it can attend to all of it) and
self-consistency (``votes`` samples decoded together, the majority of their extracted final
answers wins). ``bench/query_helpers.py`` measures both on the math benchmark.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..adapter.meta import default_instruction, resolve_adapter
from ..prompt import PromptFormat, format_prompt, parse_response
from .engine import Completion, GenRequest
from .session import open_engine

# RE2 is off unless --reread: on the math benchmark (bench/query_helpers.py, 20 problems) it
# scored 70% against 75% greedy; a small adapter answers best on the input it was trained on.
REREAD = False
VOTE_TEMPERATURE = 0.7  # sampling temperature of self-consistency when none is given


def reread(text: str) -> str:
    """The RE2 prompt: the question, then the question again."""
    return f"{text.strip()}\nRead the question again: {text.strip()}"


def majority(answers: list[str]) -> tuple[int, int]:
    """(index of the first answer of the most common extracted value, its vote count).

    Ties go to the value seen first, so the vote is deterministic.
    """
    from collections import Counter

    from ..evaluate.scorers import extract_answer

    keys = [extract_answer(a) for a in answers]
    counts = Counter(keys)
    best = max(counts.values())
    winner = next(k for k in keys if counts[k] == best)
    return keys.index(winner), best


@dataclass
class QueryResult:
    """The answer, and everything the baseline log records about it."""

    query: str
    answer: str
    completion: Completion
    adapter: str | None
    base_model: str
    base_sha256: str | None
    settings: dict
    samples: list[str] | None = None  # every sampled answer when voting


def query(text: str, *, adapter: str | None = None, base_model: str | None = None,
          instruction: str | None = None, max_tokens: int = 256,
          temperature: float = 0.0, top_p: float = 1.0, votes: int = 1,
          reread_question: bool = REREAD) -> QueryResult:
    """Answer ``text`` with the base model or one adapter.

    With ``instruction`` the query becomes the input of that instruction. Without it, an
    adapter trained on one dominant instruction gets that one (see
    :func:`locollm.adapter.meta.default_instruction`); otherwise the query is the instruction.
    ``reread_question`` gives the question twice (RE2); ``votes`` > 1 samples that many
    answers (at ``temperature``, else 0.7) and returns the majority's.
    """
    from ..errors import LocollmError

    if votes < 1:
        raise LocollmError("--votes must be at least 1")
    from ..models import resolve

    dirs = [resolve_adapter(adapter)] if adapter else []
    if dirs and instruction is None:
        instruction = default_instruction(dirs[0])
    engine, metas = open_engine(base_model, dirs)
    try:
        name = next(iter(metas), None)
        meta = metas.get(name) if name else None
        fmt = meta.fmt() if meta else PromptFormat()
        question = reread(text) if reread_question else text
        prompt = (format_prompt(instruction, question, fmt) if instruction
                  else format_prompt(question, "", fmt))
        if votes > 1:
            temperature = temperature or VOTE_TEMPERATURE
        if votes == 1:
            outs = [engine.complete(prompt, adapter=name, max_tokens=max_tokens,
                                    temperature=temperature, top_p=top_p, stop=fmt.stop)]
        else:
            outs = engine.complete_batch([GenRequest(prompt, name, max_tokens, temperature,
                                                     top_p, tuple(fmt.stop), seed=i)
                                          for i in range(votes)])
    finally:
        engine.close()
    answers = [parse_response(o.text, fmt) for o in outs]
    pick, count = majority(answers) if votes > 1 else (0, 1)
    base = resolve(base_model or (meta.base_model if meta else None))
    settings = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
                "instruction": instruction, "reread": reread_question, "votes": votes}
    if votes > 1:
        settings["majority"] = count
    return QueryResult(text, answers[pick], outs[pick], name, base.name, base.sha256,
                       settings, answers if votes > 1 else None)


def append_log(path: str | Path, result: QueryResult) -> None:
    """Append one JSON line to ``path``.

    The line is written with a single ``write`` on an ``O_APPEND`` descriptor and fsynced, so a
    crash can lose at most this line and never damages earlier ones.
    """
    record = {
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "query": result.query, "response": result.answer, "adapter": result.adapter,
        "base_model": result.base_model, "base_sha256": result.base_sha256,
        "settings": result.settings, "latency_s": round(result.completion.latency_s, 4),
        "prompt_tokens": result.completion.prompt_tokens,
        "completion_tokens": result.completion.completion_tokens,
    }
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size:  # repair a torn last line from an earlier crash
            with open(path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    line = b"\n" + line
        while line:  # a regular file takes it in one write; loop in case it does not
            line = line[os.write(fd, line):]
        os.fsync(fd)
    finally:
        os.close(fd)
