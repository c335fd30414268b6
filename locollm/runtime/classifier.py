"""Classifier router: TF-IDF features and logistic regression over the adapters' own inputs.

Each adapter folder teaches it what its domain looks like: the inputs of
``training/dataset.jsonl`` and ``eval/benchmark.jsonl`` are labelled with the adapter's name,
and the questions of every ``eval/ood.jsonl`` (what the adapter must *not* take) and the
training set's replay examples (general questions answered by the base, ``source: replay``)
with ``none``, which routes to the base. A text is what a user would send: the example's input, or
its instruction when the input is empty. Word 1-2-grams and character 2-5-grams (numbers,
units, inflections) feed one scikit-learn logistic regression with balanced class weights, as
the out-of-domain sets are small next to the training sets.

:func:`compare_routers` measures both routers on each adapter's benchmark and out-of-domain
set; the classifier is scored on held-out folds (a question is never routed by a model that
saw it), so the numbers say how it does on new text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.jsonl import Example, load_examples
from ..data.replay import REPLAY_SOURCE
from .router import Route

NONE = "none"  # the class that routes to the base model


def example_text(example: Example) -> str:
    """What a user would type for this example: its input, else its instruction."""
    return (example.input or "").strip() or example.instruction.strip()


def _examples(path: Path) -> list[Example]:
    return load_examples(path) if path.is_file() else []


@dataclass
class RouterData:
    """Labelled texts from the adapter folders, by where they came from."""

    training: list[tuple[str, str]]  # (text, label) from training/dataset.jsonl (replay: none)
    benchmark: dict[str, list[str]]  # adapter -> its benchmark texts
    ood: dict[str, list[str]]  # adapter -> its out-of-domain texts (label "none")

    @classmethod
    def from_folders(cls, folders: dict[str, Path]) -> RouterData:
        """Read every adapter folder's training, benchmark and out-of-domain inputs."""
        training, benchmark, ood = [], {}, {}
        for name, folder in sorted(folders.items()):
            folder = Path(folder)
            training += [(example_text(e), NONE if e.extra.get("source") == REPLAY_SOURCE
                          else name)
                         for e in _examples(folder / "training" / "dataset.jsonl")]
            benchmark[name] = [example_text(e) for e in _examples(folder / "eval" /
                                                                  "benchmark.jsonl")]
            ood[name] = [example_text(e) for e in _examples(folder / "eval" / "ood.jsonl")]
        return cls(training, benchmark, ood)

    def labelled(self, skip: set[str] = frozenset()) -> tuple[list[str], list[str]]:
        """All (texts, labels), leaving out the texts in ``skip`` (a held-out fold)."""
        pairs = list(self.training)
        pairs += [(t, name) for name, texts in self.benchmark.items() for t in texts]
        pairs += [(t, NONE) for texts in self.ood.values() for t in texts]
        kept = [(t, label) for t, label in pairs if t and t not in skip]
        return [t for t, _ in kept], [label for _, label in kept]


class ClassifierRouter:
    """Routes text to an adapter (or the base, class ``none``) with a trained classifier."""

    def __init__(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        self.classes = sorted(set(labels))
        self.model = None
        if len(self.classes) > 1:
            self.model = _pipeline().fit(list(texts), list(labels))
        self._only = self.classes[0] if len(self.classes) == 1 else NONE

    @classmethod
    def from_folders(cls, folders: dict[str, Path]) -> ClassifierRouter:
        """Trained on every adapter folder's data (see the module doc)."""
        return cls(*RouterData.from_folders(folders).labelled())

    @property
    def adapters(self) -> list[str]:
        """Adapters this router can choose."""
        return [c for c in self.classes if c != NONE]

    def route(self, text: str) -> Route:
        """The adapter for ``text`` (None: the base model), with the class probabilities."""
        if self.model is None:
            adapter = None if self._only == NONE else self._only
            return Route(adapter, why="the only class the classifier knows")
        probs = self.model.predict_proba([text])[0]
        ranked = sorted(zip(self.model.classes_, probs, strict=True), key=lambda p: -p[1])
        best = str(ranked[0][0])
        why = "classifier: " + ", ".join(f"{c} {p:.2f}" for c, p in ranked[:3])
        return Route(None if best == NONE else best, why=why)


_DIGIT = None


def normalise(text: str) -> str:
    """Lower case, every digit a ``0``: numbers look alike whatever their value."""
    global _DIGIT
    if _DIGIT is None:
        import re

        _DIGIT = re.compile(r"\d")
    return _DIGIT.sub("0", text.lower())


def _pipeline():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, preprocessor=normalise),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                        preprocessor=normalise))
    return make_pipeline(features, LogisticRegression(class_weight="balanced", max_iter=2000,
                                                      C=4.0))


@dataclass
class RouterScore:
    """One router on one adapter's sets: the share routed where it belongs."""

    router: str
    adapter: str
    benchmark: float | None  # share of the benchmark routed to the adapter
    ood: float | None  # share of the out-of-domain set routed to the base
    n_benchmark: int
    n_ood: int


def _share(hits: list[bool]) -> float | None:
    return sum(hits) / len(hits) if hits else None


def compare_routers(folders: dict[str, Path], registry, folds: int = 5) -> list[RouterScore]:
    """Both routers' accuracy on each adapter's benchmark and out-of-domain set.

    The keyword router reads the registry; the classifier is trained ``folds`` times, each
    time without one fold of the benchmark and out-of-domain texts, and scored on that fold.
    """
    from .router import Router

    data = RouterData.from_folders(folders)
    keywords = Router.from_registry(registry, list(folders))
    held = sorted({t for texts in [*data.benchmark.values(), *data.ood.values()]
                   for t in texts if t})
    verdict: dict[str, str | None] = {}
    for k in range(folds):
        fold = set(held[k::folds])
        if fold:
            router = ClassifierRouter(*data.labelled(skip=fold))
            verdict.update({t: router.route(t).adapter for t in fold})
    scores = []
    for name in sorted(folders):
        bench, ood = data.benchmark.get(name, []), data.ood.get(name, [])
        for label, pick in (("keywords", lambda t: keywords.route(t).adapter),
                            ("classifier", verdict.get)):
            scores.append(RouterScore(label, name, _share([pick(t) == name for t in bench]),
                                      _share([pick(t) is None for t in ood]), len(bench),
                                      len(ood)))
    return scores
