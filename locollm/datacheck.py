"""``locollm data check``: the guide's data quality checklist as pass / warn / fail lines."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .data import read_jsonl

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass
class CheckItem:
    """One checklist line."""

    name: str
    status: str
    detail: str
    problems: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    """All checklist lines for one dataset (and optionally its benchmark)."""

    dataset: str
    benchmark: str | None
    items: list[CheckItem]

    @property
    def failed(self) -> bool:
        """Whether any line failed."""
        return any(i.status == FAIL for i in self.items)

    def to_dict(self) -> dict:
        """JSON-ready form for ``--json``."""
        return {"dataset": self.dataset, "benchmark": self.benchmark, "failed": self.failed,
                "items": [asdict(i) for i in self.items]}


def _schema_item(label: str, path: Path) -> tuple[CheckItem, int]:
    result = read_jsonl(path)
    if result.problems:
        item = CheckItem(f"schema ({label})", FAIL,
                         f"{len(result.problems)} bad line(s), {len(result.examples)} good",
                         [str(p) for p in result.problems])
    else:
        item = CheckItem(f"schema ({label})", PASS,
                         f"{len(result.examples)} examples, all valid")
    return item, len(result.examples)


def check_dataset(dataset: str | Path, benchmark: str | Path | None = None,
                  min_train: int = 500, min_bench: int = 50) -> CheckReport:
    """Run the checklist on a training JSONL and optionally its benchmark JSONL."""
    items = []
    schema, n = _schema_item("training", Path(dataset))
    items.append(schema)
    items.append(CheckItem("count (training)", PASS if n >= min_train else WARN,
                           f"{n} examples (the guide asks for at least {min_train})"))
    if benchmark is not None:
        schema_b, nb = _schema_item("benchmark", Path(benchmark))
        items.append(schema_b)
        items.append(CheckItem("count (benchmark)", PASS if nb >= min_bench else WARN,
                               f"{nb} examples (the guide asks for at least {min_bench})"))
    return CheckReport(str(dataset), str(benchmark) if benchmark else None, items)
