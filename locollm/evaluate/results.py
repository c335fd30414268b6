"""What an evaluation produces, as files that describe themselves.

A :class:`BenchResult` (``eval/results.json``, ``eval/base_results.json``) records the
benchmark's path and sha256, the base model (file, sha256, quantization) and the adapter (its
LoRA GGUF and PEFT weights' sha256), the runtime and settings, the timings, and every item's
prompt, expected answer, reply, scorer and verdict. ``locollm adapters validate`` checks these
against the folder; ``locollm adapters register`` reads the scores from them. Files written by
older versions (no hashes, ``response`` instead of ``got``) still load.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import DataError
from ..paths import atomic_write
from .stats import PairedGap, paired_gap
from .verdict import Verdict


@dataclass
class ItemResult:
    """One benchmark item: what was asked and expected, what came back, how it was scored."""

    line: int  # line in the benchmark file
    prompt: str  # the exact text the model continued ("" for `locollm score`)
    expected: str  # the reference
    got: str  # the model's answer (cut at the stop strings)
    scorer: str  # the evaluation type used
    correct: bool
    value: float = 0.0  # 0..1; 1/0 for right/wrong scorers
    answer: str | None = None  # what the scorer read from the reply
    expected_answer: str | None = None  # what it read from the reference
    detail: str = ""  # why, beyond the comparison (timeout, no number, judge spread)
    instruction: str = ""
    input: str = ""
    difficulty: str | None = None
    id: str | None = None
    seconds: float | None = None  # decoding time of this answer
    tokens: int | None = None  # tokens generated
    judge_runs: list[float] | None = None  # the judge's score per run (0..1)

    @property
    def response(self) -> str:
        """The model's answer (the name older result files used)."""
        return self.got


@dataclass
class BenchResult:
    """Score of one model (base or adapter) on one benchmark, with everything it rests on."""

    model: str  # adapter name, or "base"
    benchmark: str  # the benchmark file as given
    score: float  # mean item value (accuracy for right/wrong scorers)
    correct: int
    total: int
    seconds: float
    by_difficulty: dict[str, float] = field(default_factory=dict)
    items: list[ItemResult] = field(default_factory=list)
    benchmark_sha256: str | None = None
    runtime: str = "llama.cpp"  # llama.cpp (served GGUF), transformers (training precision),
    # or predictions (`locollm score`)
    base: dict = field(default_factory=dict)  # name, file, sha256, quantization, precision
    adapter: dict | None = None  # name, folder, gguf_sha256, peft_sha256
    settings: dict = field(default_factory=dict)  # max_tokens, stop, prompt format, scorer...
    timings: dict = field(default_factory=dict)  # seconds, items_per_s, tokens, batched
    by_scorer: dict[str, float] = field(default_factory=dict)
    locollm_version: str = ""

    @property
    def values(self) -> list[float]:
        """Per-item values, in benchmark order."""
        return [i.value for i in self.items]

    @property
    def verdicts(self) -> list[bool]:
        """Per-item right/wrong, in benchmark order."""
        return [i.correct for i in self.items]

    def save(self, path: str | Path) -> Path:
        """Write the result JSON atomically."""
        return atomic_write(path, json.dumps(asdict(self), indent=1, ensure_ascii=False) +
                            "\n")


def _known(cls, data: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def result_from_json(data: dict) -> BenchResult:
    """A BenchResult from its JSON object (older files included)."""
    items = []
    for raw in data.get("items") or []:
        raw = dict(raw)
        if "got" not in raw:  # written before results described themselves
            raw["got"] = raw.pop("response", "")
            raw.setdefault("prompt", "")
            raw.setdefault("scorer", "auto")
            raw.setdefault("value", float(bool(raw.get("correct"))))
        items.append(ItemResult(**_known(ItemResult, raw)))
    values = _known(BenchResult, data) | {"items": items}
    return BenchResult(**values)


def load_result(path: str | Path) -> BenchResult:
    """Read a result JSON (``results.json``; the adapter side of ``ood_results.json``).

    Raises:
        DataError: missing or unreadable file.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if "adapter" in data and "score" not in data:
            data = data["adapter"]
        return result_from_json(data)
    except FileNotFoundError as exc:
        raise DataError("eval result missing", file=path) from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DataError(f"unreadable eval result ({exc})", file=path) from exc


def pair(a: BenchResult, b: BenchResult) -> PairedGap:
    """The paired gap of ``b`` over ``a``; they must have scored the same items."""
    if [i.line for i in a.items] != [i.line for i in b.items]:
        raise DataError("the two results did not score the same items", file=b.benchmark,
                        fix="run both on the same benchmark and --limit")
    return paired_gap(a.values, b.values, a.verdicts, b.verdicts)


@dataclass
class OodResult:
    """Out-of-domain check: the adapter must not damage what the base could already do."""

    base: BenchResult
    adapter: BenchResult

    @property
    def degradation_points(self) -> float:
        """How many points the adapter loses against the base (negative: it gains)."""
        return (self.base.score - self.adapter.score) * 100

    @property
    def gap(self) -> PairedGap:
        """Adapter minus base on the out-of-domain items, with interval and p-value."""
        return pair(self.base, self.adapter)

    def save(self, path: str | Path) -> Path:
        """Write ``ood_results.json`` atomically."""
        data = {"degradation_points": self.degradation_points,
                "gap": self.gap.to_json() if self.base.items else None,
                "adapter": asdict(self.adapter), "base": asdict(self.base)}
        return atomic_write(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def load_ood(path: str | Path) -> OodResult:
    """Read ``ood_results.json``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return OodResult(result_from_json(data["base"]), result_from_json(data["adapter"]))
    except FileNotFoundError as exc:
        raise DataError("out-of-domain result missing", file=path) from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise DataError(f"unreadable out-of-domain result ({exc})", file=path) from exc


@dataclass
class Drift:
    """Served GGUF (llama.cpp) against training precision (transformers) on the same items."""

    served: BenchResult  # the adapter as served
    trained: BenchResult  # the PEFT adapter at training precision
    served_base: BenchResult | None = None
    trained_base: BenchResult | None = None

    @property
    def gap(self) -> PairedGap:
        """Served minus training precision: negative when quantization costs points."""
        return pair(self.trained, self.served)

    @property
    def differing(self) -> int:
        """Items whose verdict differs between the two runtimes."""
        return sum(a.correct != b.correct for a, b in zip(self.served.items, self.trained.items,
                                                          strict=True))

    def to_json(self) -> dict:
        """Both runtimes' scores and the paired gap."""
        scores = {"served": self.served.score, "trained": self.trained.score}
        if self.served_base and self.trained_base:
            scores |= {"served_base": self.served_base.score,
                       "trained_base": self.trained_base.score}
        return scores | {"gap": self.gap.to_json(), "differing": self.differing}


def build_result(model: str, benchmark: str | Path, sha256: str | None,
                 items: list[ItemResult], seconds: float, **described) -> BenchResult:
    """A BenchResult from scored items: the mean value, right answers, and the breakdowns by
    difficulty and by scorer. ``described`` sets the provenance fields (runtime, base, adapter,
    settings, timings)."""
    from .. import __version__

    def mean(group: list[ItemResult]) -> float:
        return sum(i.value for i in group) / len(group)

    groups: dict[str, list[ItemResult]] = {}
    kinds: dict[str, list[ItemResult]] = {}
    for item in items:
        if item.difficulty:
            groups.setdefault(str(item.difficulty), []).append(item)
        kinds.setdefault(item.scorer, []).append(item)
    return BenchResult(model, str(benchmark), mean(items) if items else 0.0,
                       sum(i.correct for i in items), len(items), seconds,
                       {k: mean(v) for k, v in sorted(groups.items())}, items, sha256,
                       by_scorer={k: mean(v) for k, v in sorted(kinds.items())},
                       locollm_version=__version__, **described)


@dataclass
class Comparison:
    """Adapter and base on the same benchmark: the paired gap, the out-of-domain check, drift
    between runtimes, and the guide's whole verdict."""

    base: BenchResult
    adapter: BenchResult
    verdict: Verdict
    gap: PairedGap
    by_difficulty: dict[str, PairedGap] = field(default_factory=dict)
    ood: OodResult | None = None
    drift: Drift | None = None
    drift_note: str = ""  # why drift is not shown, when it is not

    @property
    def points(self) -> float:
        """Adapter minus base, in points."""
        return self.gap.points

    @property
    def failures(self) -> list[ItemResult]:
        """Benchmark items the adapter got wrong: material for the next iteration."""
        return [item for item in self.adapter.items if not item.correct]

    def to_json(self) -> dict:
        """The comparison's numbers (the per-item detail is in the result files)."""
        return {"benchmark": self.adapter.benchmark,
                "benchmark_sha256": self.adapter.benchmark_sha256,
                "runtime": self.adapter.runtime, "base_score": self.base.score,
                "adapter_score": self.adapter.score, "gap": self.gap.to_json(),
                "by_difficulty": {k: v.to_json() for k, v in self.by_difficulty.items()},
                "ood": None if self.ood is None else {
                    "base_score": self.ood.base.score, "adapter_score": self.ood.adapter.score,
                    "drop_points": self.ood.degradation_points, "gap": self.ood.gap.to_json()},
                "drift": None if self.drift is None else self.drift.to_json(),
                "drift_note": self.drift_note, "verdict": self.verdict.to_json()}

    def save(self, path: str | Path) -> Path:
        """Write ``comparison.json`` atomically."""
        return atomic_write(path, json.dumps(self.to_json(), indent=1, ensure_ascii=False) +
                            "\n")
