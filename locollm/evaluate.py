"""Benchmark runner: adapter vs base on held-out JSONL, exact match of the final answer.

Scores use the same prompt format as training and serving. The verdict follows the guide:
strong (>= 15 points above base), moderate (5-15), weak (0-5), negative (below base).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .data import Example, load_examples
from .errors import DataError
from .paths import atomic_write
from .prompt import PromptFormat, format_prompt, parse_response

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_ANSWER = re.compile(r"answer is\s*:?\s*\$?(-?\d[\d,]*(?:\.\d+)?)", re.IGNORECASE)


def extract_answer(text: str) -> str:
    """The final answer: the number after "answer is", else the last number, else the last line."""
    match = _ANSWER.findall(text)
    numbers = match or _NUMBER.findall(text)
    if numbers:
        value = numbers[-1].replace(",", "")
        return value[:-2] if value.endswith(".0") else value.rstrip(".")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return re.sub(r"\s+", " ", lines[-1].lower()).strip(" .") if lines else ""


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def is_correct(prediction: str, reference: str) -> bool:
    """Exact match of the final answer.

    A numeric reference must match the prediction's final number exactly. A short text
    reference ("London") must appear as whole words in the prediction's first line, so "The
    capital of England is London." counts and "Londonderry" or a later ramble does not.
    """
    expected = extract_answer(reference)
    if not expected:
        return False
    if _NUMBER.fullmatch(expected):
        return extract_answer(prediction) == expected
    first = next((line for line in prediction.splitlines() if line.strip()), "")
    return f" {_words(expected)} " in f" {_words(first)} "


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


def run_benchmark(engine, examples: list[Example], adapter: str | None, *,
                  benchmark: str = "", max_tokens: int = 128,
                  fmt: PromptFormat | None = None) -> BenchResult:
    """Greedy-decode every example with ``adapter`` (None: base) and score it."""
    fmt = fmt or PromptFormat()
    start = time.perf_counter()
    items = []
    for ex in examples:
        out = engine.complete(format_prompt(ex.instruction, ex.input, fmt), adapter=adapter,
                              max_tokens=max_tokens, temperature=0.0, stop=fmt.stop)
        answer = parse_response(out.text, fmt)
        items.append(ItemResult(ex.line, ex.instruction, ex.input, ex.output, answer,
                                is_correct(answer, ex.output), ex.extra.get("difficulty")))
    correct = sum(i.correct for i in items)
    groups: dict[str, list[bool]] = {}
    for item in items:
        if item.difficulty:
            groups.setdefault(str(item.difficulty), []).append(item.correct)
    return BenchResult(adapter or "base", benchmark, correct / max(len(items), 1), correct,
                       len(items), time.perf_counter() - start,
                       {k: sum(v) / len(v) for k, v in sorted(groups.items())}, items)


def verdict(adapter_score: float, base_score: float) -> tuple[str, float]:
    """The guide's verdict and the gain in percentage points."""
    points = (adapter_score - base_score) * 100
    if points < 0:
        return "negative", points
    if points < 5:
        return "weak", points
    if points < 15:
        return "moderate", points
    return "strong", points


ADVICE = {
    "strong": "ship it: 15+ points above base (check the out-of-domain results too)",
    "moderate": "iterate: check the gain holds across difficulty levels; add harder examples",
    "weak": "rethink: data quality, a narrower domain, more data, or other hyperparameters",
    "negative": "don't ship: look for contamination, format issues or corrupted data",
}


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


def compare(adapter_dir: str | Path, benchmark: str | Path, *, out_dir: str | Path | None = None,
            base_model: str | None = None, max_tokens: int = 128, limit: int | None = None,
            ood: str | Path | None = None) -> Comparison:
    """Score base and adapter on ``benchmark`` (and the out-of-domain set ``ood``).

    Writes results.json, base_results.json, failures.jsonl and, with ``ood``,
    ood_results.json into ``out_dir`` (default: the adapter's eval/ folder).
    """
    from .adapter import load_meta
    from .data import write_jsonl
    from .runtime.session import open_engine

    adapter_dir = Path(adapter_dir)
    examples = load_examples(benchmark)[:limit]
    ood_examples = load_examples(ood)[:limit] if ood else []
    if not examples:
        raise DataError("no benchmark items to score", file=benchmark,
                        fix="pass a --limit of at least 1")
    meta = load_meta(adapter_dir)
    fmt = meta.fmt()
    engine, _ = open_engine(base_model, [adapter_dir])
    try:
        runs = {}
        for label, items, source in (("bench", examples, benchmark), ("ood", ood_examples, ood)):
            if items:
                runs[label] = [run_benchmark(engine, items, name, benchmark=str(source),
                                             max_tokens=max_tokens, fmt=fmt)
                               for name in (None, meta.name)]
    finally:
        engine.close()
    out = Path(out_dir) if out_dir else adapter_dir / "eval"
    base, tuned = runs["bench"]
    tuned.save(out / "results.json")
    base.save(out / "base_results.json")
    ood_result = OodResult(*runs["ood"]) if "ood" in runs else None
    if ood_result:
        ood_result.save(out / "ood_results.json")
    name, points = verdict(tuned.score, base.score)
    result = Comparison(base, tuned, name, points, ood_result)
    write_jsonl(out / "failures.jsonl", (asdict(item) for item in result.failures))
    return result


def evaluate_one(benchmark: str | Path, output: str | Path, adapter_dir: str | Path | None = None,
                 base_model: str | None = None, max_tokens: int = 128) -> BenchResult:
    """Score one model (an adapter, or the base when ``adapter_dir`` is None); write ``output``."""
    from .runtime.session import open_engine

    examples = load_examples(benchmark)
    dirs = [Path(adapter_dir)] if adapter_dir else []
    engine, metas = open_engine(base_model, dirs)
    try:
        name = next(iter(metas), None)
        fmt = metas[name].fmt() if name else PromptFormat()
        result = run_benchmark(engine, examples, name, benchmark=str(benchmark),
                               max_tokens=max_tokens, fmt=fmt)
    finally:
        engine.close()
    result.save(output)
    return result
