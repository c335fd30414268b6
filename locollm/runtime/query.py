"""One-shot queries: ``loco query "..." [--adapter NAME | --no-adapter] [--save-log FILE]``."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..adapter.meta import default_instruction, resolve_adapter
from ..prompt import PromptFormat, format_prompt, parse_response
from .engine import Completion
from .session import open_engine


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


def query(text: str, *, adapter: str | None = None, base_model: str | None = None,
          instruction: str | None = None, max_tokens: int = 256,
          temperature: float = 0.0, top_p: float = 1.0) -> QueryResult:
    """Answer ``text`` with the base model or one adapter.

    With ``instruction`` the query becomes the input of that instruction. Without it, an
    adapter trained on one dominant instruction gets that one (see
    :func:`locollm.adapter.meta.default_instruction`); otherwise the query is the instruction.
    """
    from ..models import resolve

    dirs = [resolve_adapter(adapter)] if adapter else []
    if dirs and instruction is None:
        instruction = default_instruction(dirs[0])
    engine, metas = open_engine(base_model, dirs)
    try:
        name = next(iter(metas), None)
        meta = metas.get(name) if name else None
        fmt = meta.fmt() if meta else PromptFormat()
        prompt = (format_prompt(instruction, text, fmt) if instruction
                  else format_prompt(text, "", fmt))
        out = engine.complete(prompt, adapter=name, max_tokens=max_tokens,
                              temperature=temperature, top_p=top_p, stop=fmt.stop)
    finally:
        engine.close()
    base = resolve(base_model or (meta.base_model if meta else None))
    settings = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
                "instruction": instruction}
    return QueryResult(text, parse_response(out.text, fmt), out, name, base.name, base.sha256,
                       settings)


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
