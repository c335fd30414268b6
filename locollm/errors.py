"""Errors the library raises. Only the CLI (locollm/cli/) turns them into messages and exit codes.

Every error can carry the file and line it is about and a fix, so a user reads
``data.jsonl:12: 'output' is missing (fix: add a non-empty "output" string)``
instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Problem:
    """One thing wrong with an input, located as precisely as we can."""

    message: str
    file: str | Path | None = None
    line: int | None = None
    fix: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"{where}{self.message}{fix}"


class LocollmError(Exception):
    """Base error: bad input or usage. The CLI prints it and exits 2."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        fix: str | None = None,
        problems: list[Problem] | None = None,
    ) -> None:
        self.problem = Problem(message, file, line, fix)
        self.problems = problems or []
        super().__init__(str(self.problem))

    def render(self) -> str:
        """The full message: the headline, then one line per collected problem."""
        lines = [str(self.problem)]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


class DataError(LocollmError):
    """A dataset file is unreadable or violates the JSONL schema."""


class ConfigError(LocollmError):
    """A config file or flag value is invalid."""


class ModelNotFoundError(LocollmError):
    """A base model cannot be resolved (unknown name, missing file, offline hub)."""


class AdapterError(LocollmError):
    """An adapter folder is missing, incomplete, or made for another base model."""


class RuntimeEngineError(LocollmError):
    """llama.cpp refused a model or adapter, or generation failed."""


class CheckFailed(LocollmError):
    """A check ran and found problems: exit 1, not a usage error."""

    exit_code = 1
