"""Routers: pick the adapter for a text. The keyword router lives here; the classifier router
(TF-IDF + logistic regression, :mod:`locollm.runtime.classifier`) has the same interface.

Keyword router: pick the adapter whose registry ``router_keywords`` a text mentions most.

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
    why: str | None = None  # the decision in words, when not keyword matches

    @property
    def matched(self) -> tuple[str, ...]:
        """Keywords of the chosen adapter found in the text."""
        return self.scores[0].matched if self.scores else ()

    def reason(self) -> str:
        """One line on why: the keywords matched, and the runners-up."""
        if self.why is not None:
            return self.why
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


ROUTERS = ("keywords", "classifier")
# The router "auto" and `loco route` use unless told. Picked by bench/router_accuracy.py on the
# shipped adapters (math): keywords send 11 of the 40 out-of-domain questions to math
# (accuracy 72.5% there, 100% on the benchmark); the classifier, measured on held-out folds,
# keeps the benchmark and routes the out-of-domain set to the base (README, "Routing"). It
# needs data: when an adapter folder has no training set, or none has an out-of-domain set,
# the default falls back to keywords (see default_router).
DEFAULT_ROUTER = "classifier"


def default_router(folders: dict[str, Path]) -> str:
    """:data:`DEFAULT_ROUTER` when the folders can train it, else ``keywords``."""
    if DEFAULT_ROUTER == "classifier" and folders and all(
            (Path(f) / "training" / "dataset.jsonl").is_file() for f in folders.values()) and \
            any((Path(f) / "eval" / "ood.jsonl").is_file() for f in folders.values()):
        return "classifier"
    return "keywords"


def make_router(kind: str | None, registry: Registry, folders: dict[str, Path]):
    """The router ``kind`` (None: :func:`default_router`) over the adapters ``folders``."""
    from ..errors import ConfigError

    kind = kind or default_router(folders)
    if kind == "keywords":
        return Router.from_registry(registry, list(folders))
    if kind == "classifier":
        from .classifier import ClassifierRouter

        return ClassifierRouter.from_folders(folders)
    raise ConfigError(f"unknown router {kind!r}", fix=f"use one of {', '.join(ROUTERS)}")


def route_text(text: str, *, registry: str | Path | None = None,
               adapters_root: str | Path = ADAPTERS_ROOT,
               trained_only: bool = True, router: str | None = None) -> Route:
    """Route ``text`` over the registry's adapters (by default only those trained under the
    root) with ``router`` (None: :data:`DEFAULT_ROUTER`). The classifier needs trained
    adapter folders (their data), so it only considers those."""
    reg = load_registry(registry or registry_path(adapters_root))
    trained = trained_adapters(adapters_root)
    kind = router or default_router(trained)
    if kind == "keywords":
        available = list(trained) if trained_only else None
        return Router.from_registry(reg, available).route(text)
    return make_router(kind, reg, trained).route(text)
