"""Keyword router: pick the adapter whose registry ``router_keywords`` a text mentions most.

A keyword matches as a whole word or phrase, case-insensitively (``add`` matches "Add 3" but
not "address"; ``word problem`` matches "word  problem"). An adapter scores the number of its
distinct keywords found; ties go to more occurrences, then to the name in alphabetical order,
so the same text always routes the same way. No match routes to the base model (None).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..adapter.meta import ADAPTERS_ROOT, trained_adapters
from ..adapter.registry import Registry, load_registry, registry_path


@dataclass(frozen=True)
class Score:
    """How strongly a text points at one adapter."""

    adapter: str
    matched: tuple[str, ...]  # distinct keywords found, in the registry's order
    occurrences: int

    @property
    def key(self) -> tuple[int, int, str]:
        """Sort key: most keywords, then most occurrences, then the name."""
        return (-len(self.matched), -self.occurrences, self.adapter)


@dataclass(frozen=True)
class Route:
    """The router's decision and the evidence for it."""

    adapter: str | None
    scores: tuple[Score, ...] = field(default_factory=tuple)  # every adapter that matched

    @property
    def matched(self) -> tuple[str, ...]:
        """Keywords of the chosen adapter found in the text."""
        return self.scores[0].matched if self.scores else ()

    def reason(self) -> str:
        """One line on why: the keywords matched, and the runners-up."""
        if self.adapter is None:
            return "no adapter keyword in the text"
        words = ", ".join(repr(w) for w in self.matched)
        why = f"matched {words}"
        if len(self.scores) > 1:
            others = "; ".join(f"{s.adapter} {len(s.matched)}" for s in self.scores[1:])
            why += f" (beats {others})"
        return why


def _pattern(keyword: str) -> re.Pattern[str]:
    """Whole-word, case-insensitive; spaces inside a phrase match any whitespace."""
    body = r"\s+".join(re.escape(part) for part in keyword.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


class Router:
    """Routes text to one of a set of adapters by their keywords."""

    def __init__(self, keywords: dict[str, list[str]]) -> None:
        self.keywords = {name: [w for w in words if w.strip()]
                         for name, words in sorted(keywords.items())}
        self._patterns = {name: [(w, _pattern(w)) for w in words]
                          for name, words in self.keywords.items()}

    @classmethod
    def from_registry(cls, registry: Registry, available: list[str] | None = None) -> Router:
        """A router over the registry's entries (only those in ``available`` when given)."""
        return cls({name: entry.router_keywords for name, entry in registry.entries.items()
                    if available is None or name in available})

    @property
    def adapters(self) -> list[str]:
        """Adapters this router can choose."""
        return list(self.keywords)

    def route(self, text: str) -> Route:
        """The adapter for ``text`` (None: the base model), with every matching score."""
        scores = []
        for name, patterns in self._patterns.items():
            hits = [(word, len(p.findall(text))) for word, p in patterns]
            found = tuple(word for word, n in hits if n)
            if found:
                scores.append(Score(name, found, sum(n for _, n in hits)))
        scores.sort(key=lambda s: s.key)
        return Route(scores[0].adapter if scores else None, tuple(scores))


def route_text(text: str, *, registry: str | Path | None = None,
               adapters_root: str | Path = ADAPTERS_ROOT,
               trained_only: bool = True) -> Route:
    """Route ``text`` over the registry (by default only adapters trained under the root)."""
    reg = load_registry(registry or registry_path(adapters_root))
    available = list(trained_adapters(adapters_root)) if trained_only else None
    return Router.from_registry(reg, available).route(text)
