"""Benchmark files: one JSON object per line, each an item to score.

For ``locollm eval`` a line is a training-style example (``instruction``, ``input``,
``output``); for ``locollm score`` only the reference is needed. A line may carry:

* ``expected_output`` (else ``output``): the reference, a string or a list of accepted ones;
* ``evaluation_type``: the scorer (numeric, multiple_choice, math, exact, contains, rouge, json,
  code, judge); without it the scorer is chosen from ``--scorer`` or from the reference itself;
* ``id``: matched against a prediction's ``id`` by ``locollm score``;
* ``difficulty``: results are also broken down by it;
* ``tests`` (a program, or a list of assert lines) and ``entry_point`` for ``code`` items;
* ``rubric`` for ``judge`` items.

A file's identity is its sha256: results record it, and ``locollm adapters validate`` refuses
results computed on another version of the benchmark.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError, Problem
from ..paths import sha256_file

EVALUATION_TYPES = ("numeric", "multiple_choice", "math", "exact", "contains", "rouge", "json",
                    "code", "judge")
# fields with a meaning to the scorers; anything else is kept in ``extra``
_FIELDS = ("instruction", "input", "output", "expected_output", "evaluation_type", "id",
           "difficulty", "tests", "entry_point", "rubric")


@dataclass
class BenchItem:
    """One benchmark item: what is asked, what counts as right, and how to score it."""

    line: int  # line in the benchmark file (1-based)
    references: list[str]  # accepted answers (a reference text or several)
    instruction: str = ""
    input: str = ""
    evaluation_type: str | None = None  # None: chosen from --scorer or the reference
    id: str | None = None
    difficulty: str | None = None
    tests: str | None = None  # code: a program that raises when the answer is wrong
    entry_point: str | None = None  # code: the function the tests call as check(entry_point)
    rubric: str | None = None  # judge: what a good answer does
    extra: dict = field(default_factory=dict)

    @property
    def reference(self) -> str:
        """The first accepted answer (what reports show)."""
        return self.references[0] if self.references else ""

    @property
    def question(self) -> str:
        """Instruction and input, as one text."""
        return f"{self.instruction}\n{self.input}".strip()


def _text_list(value: object) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _string(obj: dict, key: str, problems: list[Problem], path: Path, line: int) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key in ("id",
                                                                                  "difficulty"):
        return str(value)
    if not isinstance(value, str):
        problems.append(Problem(f"'{key}' must be a string", path, line, f'make "{key}" a '
                                "string"))
        return None
    return value


def item_from_json(obj: object, path: Path, line: int, problems: list[Problem],
                   need_prompt: bool) -> BenchItem | None:
    """Validate one decoded line; return the item, or add located problems and return None."""
    if not isinstance(obj, dict):
        problems.append(Problem("expected a JSON object", path, line,
                                'write {"instruction": ..., "output": ...}'))
        return None
    before = len(problems)
    key = "expected_output" if "expected_output" in obj else "output"
    refs = _text_list(obj.get(key))
    kind = _string(obj, "evaluation_type", problems, path, line)
    if kind is not None and kind not in EVALUATION_TYPES:
        problems.append(Problem(f"unknown evaluation_type {kind!r}", path, line,
                                f"use one of {', '.join(EVALUATION_TYPES)}"))
    tests = obj.get("tests")
    if isinstance(tests, list) and all(isinstance(t, str) for t in tests):
        tests = "\n".join(tests)
    if tests is not None and not isinstance(tests, str):
        problems.append(Problem("'tests' must be a program (a string) or a list of lines",
                                path, line, 'write "tests": ["assert f(1) == 2"]'))
    if kind == "code" and not tests:
        problems.append(Problem("a code item needs 'tests' to run", path, line,
                                'add "tests": ["assert add(1, 2) == 3"]'))
    if refs is None and kind not in ("code", "judge"):
        problems.append(Problem(f"'{key}' must be a non-empty string (or a list of them)",
                                path, line, 'add "expected_output": "..." or "output": "..."'))
    for name in ("instruction", "input"):
        _string(obj, name, problems, path, line)
    if need_prompt and not (isinstance(obj.get("instruction"), str) and obj["instruction"]
                            .strip()):
        problems.append(Problem("'instruction' is missing: eval needs a prompt to decode", path,
                                line, 'add "instruction": "..." (or score answers made '
                                "elsewhere with `locollm score`)"))
    if len(problems) > before:
        return None
    return BenchItem(
        line, refs or [], obj.get("instruction") or "", obj.get("input") or "", kind,
        _string(obj, "id", problems, path, line), _string(obj, "difficulty", problems, path,
                                                          line),
        tests, obj.get("entry_point"), obj.get("rubric"),
        {k: v for k, v in obj.items() if k not in _FIELDS})


def read_objects(path: str | Path, what: str, fix: str
                 ) -> tuple[list[tuple[int, object]], list[Problem]]:
    """The decoded lines of a JSONL file with their line numbers, and a located problem for
    each line that is not JSON.

    Raises:
        DataError: the file is missing or not UTF-8 text.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise DataError(f"{what} not found", file=path, fix="check the path") from exc
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise DataError(f"not a UTF-8 JSONL file ({exc})", file=path) from exc
    objects, problems = [], []
    for number, raw in enumerate(text.split("\n"), start=1):
        if raw.strip():
            try:
                objects.append((number, json.loads(raw)))
            except json.JSONDecodeError as exc:
                problems.append(Problem(f"invalid JSON ({exc.msg})", path, number, fix))
    return objects, problems


def raise_problems(problems: list[Problem], what: str) -> None:
    """Raise one DataError for every problem collected (the first as the headline)."""
    if problems:
        first = problems[0]
        raise DataError(f"{len(problems)} problem(s) in the {what}; first: {first.message}",
                        file=first.file, line=first.line, fix=first.fix,
                        problems=problems[1:20])


def load_benchmark(path: str | Path, *, need_prompt: bool = True,
                   limit: int | None = None) -> list[BenchItem]:
    """Read a benchmark JSONL, every problem collected with its line before raising.

    Args:
        path: the JSONL file.
        need_prompt: every line must have an ``instruction`` (eval decodes it).
        limit: keep only the first N items.

    Raises:
        DataError: unreadable file, a bad line (each one listed), or no items.
    """
    path = Path(path)
    objects, problems = read_objects(path, "benchmark", "each line must be one JSON object")
    items = [item for number, obj in objects
             if (item := item_from_json(obj, path, number, problems, need_prompt))]
    raise_problems(problems, "benchmark")
    items = items[:limit] if limit is not None else items
    if not items:
        raise DataError("no benchmark items to score", file=path,
                        fix="add items, or pass a --limit of at least 1")
    return items


def benchmark_sha256(path: str | Path) -> str:
    """The benchmark's identity: the sha256 of the file's bytes."""
    return sha256_file(path)
