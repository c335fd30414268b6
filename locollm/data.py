"""Read and validate instruction-tuning JSONL: one object per line with string fields
``instruction``, ``input`` (may be empty) and ``output``.

Reading collects every problem with its file and line before raising, so one run of
``locollm data check`` shows them all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError, Problem

REQUIRED = ("instruction", "output")
KNOWN = ("instruction", "input", "output")
MAX_LINE_BYTES = 1 << 20  # a 1 MiB line is almost certainly not one training example


@dataclass
class Example:
    """One training or benchmark example, with where it came from."""

    instruction: str
    input: str
    output: str
    line: int = 0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The JSONL object for this example (extra fields kept)."""
        return {"instruction": self.instruction, "input": self.input, "output": self.output,
                **self.extra}


@dataclass
class ReadResult:
    """Examples that parsed, and problems found on the other lines."""

    path: Path
    examples: list[Example]
    problems: list[Problem]
    unknown_fields: dict[str, int] = field(default_factory=dict)


def _decode_lines(path: Path, problems: list[Problem]) -> Iterable[tuple[int, str]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError("file not found", file=path, fix="check the path") from exc
    except IsADirectoryError as exc:
        raise DataError("is a folder, not a JSONL file", file=path) from exc
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        if not chunk.strip():
            continue
        if len(chunk) > MAX_LINE_BYTES:
            problems.append(Problem(f"line is {len(chunk):,} bytes, over the "
                                    f"{MAX_LINE_BYTES:,} limit", path, number,
                                    "split this example or remove it"))
            continue
        try:
            yield number, chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(Problem(f"not UTF-8 (byte {exc.start})", path, number,
                                    "re-save the file as UTF-8"))


def _parse_line(path: Path, number: int, text: str, problems: list[Problem],
                last_line: bool) -> Example | None:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = "the last line looks truncated; finish or delete it" if last_line else \
            "each line must be one complete JSON object"
        if number == 1 and text.lstrip().startswith("["):
            hint = "this is a JSON array; write one object per line (JSONL)"
        problems.append(Problem(f"invalid JSON ({exc.msg})", path, number, hint))
        return None
    if not isinstance(obj, dict):
        problems.append(Problem(f"expected a JSON object, got {type(obj).__name__}", path,
                                number, 'write {"instruction": ..., "input": ..., "output": ...}'))
        return None
    bad = False
    for key in REQUIRED:
        value = obj.get(key)
        if key not in obj:
            problems.append(Problem(f"'{key}' is missing", path, number,
                                    f'add a non-empty "{key}" string'))
            bad = True
        elif not isinstance(value, str):
            problems.append(Problem(f"'{key}' must be a string, got {type(value).__name__}",
                                    path, number, f'make "{key}" a string'))
            bad = True
        elif not value.strip():
            problems.append(Problem(f"'{key}' is empty", path, number,
                                    f'write a non-empty "{key}"'))
            bad = True
    value = obj.get("input", "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        problems.append(Problem(f"'input' must be a string, got {type(value).__name__}",
                                path, number, 'make "input" a string (or "")'))
        bad = True
    if bad:
        return None
    extra = {k: v for k, v in obj.items() if k not in KNOWN}
    return Example(obj["instruction"], value, obj["output"], number, extra)


def read_jsonl(path: str | Path) -> ReadResult:
    """Read a JSONL dataset, keeping good examples and a located problem for each bad line."""
    path = Path(path)
    problems: list[Problem] = []
    lines = list(_decode_lines(path, problems))
    examples: list[Example] = []
    unknown: dict[str, int] = {}
    for i, (number, text) in enumerate(lines):
        example = _parse_line(path, number, text, problems, last_line=i == len(lines) - 1)
        if example is not None:
            examples.append(example)
            for key in example.extra:
                unknown[key] = unknown.get(key, 0) + 1
    if not lines and not problems:
        problems.append(Problem("file is empty", path, None, "add one JSON object per line"))
    return ReadResult(path, examples, problems, unknown)


def load_examples(path: str | Path) -> list[Example]:
    """Read a dataset and raise :class:`DataError` listing every bad line, if any."""
    result = read_jsonl(path)
    if result.problems:
        first = result.problems[0]
        raise DataError(f"{len(result.problems)} problem(s) in dataset; first: {first.message}",
                        file=first.file, line=first.line, fix=first.fix,
                        problems=result.problems[1:20])
    return result.examples


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> Path:
    """Write rows as JSONL atomically."""
    from .paths import atomic_write

    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return atomic_write(path, text)
