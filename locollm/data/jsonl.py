"""Read and validate instruction-tuning JSONL: one object per line with string fields
``instruction``, ``input`` (may be empty) and ``output``.

Reading collects every problem with its file and line before raising, so one run of
``locollm data check`` shows them all. A whole-file mistake (an empty file, a JSON array
instead of JSONL) is one problem, not one per line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError, Problem

REQUIRED = ("instruction", "output")
KNOWN = ("instruction", "input", "output")
MAX_LINE_BYTES = 1 << 20  # a 1 MiB line is almost certainly not one training example
ARRAY_FIX = ("write one object per line (JSONL); `locollm data convert --from alpaca FILE "
             "-o out.jsonl` converts an array of {instruction, input, output} objects")


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

    @property
    def prompt(self) -> str:
        """What the model is asked: instruction and input (used to find duplicates)."""
        return f"{self.instruction}\n{self.input}" if self.input else self.instruction


@dataclass
class ReadResult:
    """Examples that parsed, and problems found on the other lines.

    ``shapes`` maps each line shape (sorted ``(key, JSON type)`` pairs) to ``[count, first
    line]``, so a file that changes schema half-way can be reported.
    """

    path: Path
    examples: list[Example]
    problems: list[Problem]
    unknown_fields: dict[str, int] = field(default_factory=dict)
    shapes: dict[tuple, list[int]] = field(default_factory=dict)
    empty_outputs: list[int] = field(default_factory=list)
    lines: int = 0


def _type_name(value: object) -> str:
    return {str: "string", bool: "boolean", int: "number", float: "number", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError("file not found", file=path, fix="check the path") from exc
    except IsADirectoryError as exc:
        raise DataError("is a folder, not a JSONL file", file=path) from exc
    except PermissionError as exc:
        raise DataError("permission denied", file=path, fix="check the file's permissions") \
            from exc


def _decode_lines(path: Path, raw: bytes, problems: list[Problem]) -> list[tuple[int, str]]:
    lines = []
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        if number == 1 and chunk.startswith(b"\xef\xbb\xbf"):
            chunk = chunk[3:]  # a UTF-8 byte-order mark from a Windows editor
        if not chunk.strip():
            continue
        if len(chunk) > MAX_LINE_BYTES:
            problems.append(Problem(f"line is {len(chunk):,} bytes, over the "
                                    f"{MAX_LINE_BYTES:,} limit", path, number,
                                    "split this example or remove it"))
            continue
        try:
            lines.append((number, chunk.decode("utf-8")))
        except UnicodeDecodeError as exc:
            problems.append(Problem(f"not UTF-8 (byte {exc.start})", path, number,
                                    "re-save the file as UTF-8"))
    return lines


def _is_json_array(raw: bytes) -> bool:
    if not raw.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        return False
    try:
        return isinstance(json.loads(raw.decode("utf-8-sig")), list)
    except (UnicodeDecodeError, ValueError):
        return False


def to_example(obj: object, problems: list[Problem], path: str | Path | None = None,
               line: int | None = None) -> Example | None:
    """Validate one decoded JSON value; return the example or add located problems."""
    if not isinstance(obj, dict):
        problems.append(Problem(f"expected a JSON object, got {_type_name(obj)}", path, line,
                                'write {"instruction": ..., "input": ..., "output": ...}'))
        return None
    bad = False
    for key in REQUIRED:
        value = obj.get(key)
        if key not in obj:
            problems.append(Problem(f"'{key}' is missing", path, line,
                                    f'add a non-empty "{key}" string'))
            bad = True
        elif not isinstance(value, str):
            problems.append(Problem(f"'{key}' must be a string, got {_type_name(value)}",
                                    path, line, f'make "{key}" a string'))
            bad = True
        elif not value.strip():
            problems.append(Problem(f"'{key}' is empty or whitespace", path, line,
                                    f'write a non-empty "{key}"'))
            bad = True
    value = obj.get("input", "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        problems.append(Problem(f"'input' must be a string, got {_type_name(value)}",
                                path, line, 'make "input" a string (or "")'))
        bad = True
    if bad:
        return None
    extra = {k: v for k, v in obj.items() if k not in KNOWN}
    return Example(obj["instruction"], value, obj["output"], line or 0, extra)


def _parse_line(path: Path, number: int, text: str, result: ReadResult,
                last_line: bool) -> Example | None:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = "the last line looks truncated; finish or delete it" if last_line else \
            "each line must be one complete JSON object"
        if number == 1 and text.lstrip().startswith("["):
            hint = ARRAY_FIX
        result.problems.append(Problem(f"invalid JSON ({exc.msg}, column {exc.colno})", path,
                                       number, hint))
        return None
    if isinstance(obj, dict):
        shape = tuple(sorted((k, _type_name(v)) for k, v in obj.items()))
        seen = result.shapes.setdefault(shape, [0, number])
        seen[0] += 1
        output = obj.get("output")
        if isinstance(output, str) and not output.strip():
            result.empty_outputs.append(number)
    return to_example(obj, result.problems, path, number)


def read_jsonl(path: str | Path) -> ReadResult:
    """Read a JSONL dataset, keeping good examples and a located problem for each bad line."""
    path = Path(path)
    raw = _read_bytes(path)
    result = ReadResult(path, [], [])
    if _is_json_array(raw):
        result.problems.append(Problem("this is one JSON array, not JSONL", path, 1, ARRAY_FIX))
        return result
    lines = _decode_lines(path, raw, result.problems)
    result.lines = len(lines)
    for i, (number, text) in enumerate(lines):
        example = _parse_line(path, number, text, result, last_line=i == len(lines) - 1)
        if example is not None:
            result.examples.append(example)
            for key in example.extra:
                result.unknown_fields[key] = result.unknown_fields.get(key, 0) + 1
    if not lines and not result.problems:
        result.problems.append(Problem("file is empty", path, None,
                                       "add one JSON object per line"))
    return result


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
    from ..paths import atomic_write

    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return atomic_write(path, text)
