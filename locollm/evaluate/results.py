"""What an evaluation produces: per-item results, one model's score, and the comparisons.

Every result is a dataclass that saves itself as JSON atomically, so ``eval/*.json`` in an
adapter folder can be read back by the registry and by the next iteration.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..paths import atomic_write
from .verdict import ADVICE


@dataclass
class ItemResult:
    """One benchmark item, kept so the next iteration can study the failures."""

    line: int
    instruction: str
    input: str
    expected: str
    response: str
    correct: bool
    difficulty: str | None = None


@dataclass
class BenchResult:
    """Score of one model (base or adapter) on one benchmark."""

    model: str
    benchmark: str
    score: float
    correct: int
    total: int
    seconds: float
    by_difficulty: dict[str, float] = field(default_factory=dict)
    items: list[ItemResult] = field(default_factory=list)

    def save(self, path: str | Path) -> Path:
        """Write the result JSON atomically."""
        return atomic_write(path, json.dumps(asdict(self), indent=1) + "\n")


@dataclass
class OodResult:
    """Out-of-domain check: the adapter must not damage what the base could already do."""

    base: BenchResult
    adapter: BenchResult

    @property
    def degradation_points(self) -> float:
        """How many points the adapter loses against the base (negative: it gains)."""
        return (self.base.score - self.adapter.score) * 100

    def save(self, path: str | Path) -> Path:
        """Write ``ood_results.json`` atomically."""
        data = {"degradation_points": self.degradation_points, "adapter": asdict(self.adapter),
                "base": asdict(self.base)}
        return atomic_write(path, json.dumps(data, indent=1) + "\n")


@dataclass
class Comparison:
    """Adapter and base on the same benchmark, with the guide's verdict."""

    base: BenchResult
    adapter: BenchResult
    verdict: str
    points: float
    ood: OodResult | None = None

    @property
    def advice(self) -> str:
        """What the guide says to do next."""
        return ADVICE[self.verdict]

    @property
    def failures(self) -> list[ItemResult]:
        """Benchmark items the adapter got wrong: material for the next iteration."""
        return [item for item in self.adapter.items if not item.correct]
