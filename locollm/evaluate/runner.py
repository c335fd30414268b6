"""Benchmark runner: greedy-decode held-out JSONL with adapter and base, and score it.

Prompts use the same format as training and serving (the adapter's metadata). ``compare``
scores base and adapter on the benchmark and the out-of-domain set and writes the adapter's
``eval/`` files; ``evaluate_one`` scores one model.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from ..data.jsonl import Example, load_examples
from ..errors import DataError
from ..prompt import PromptFormat, format_prompt, parse_response
from .results import BenchResult, Comparison, ItemResult, OodResult
from .scorers import is_correct
from .verdict import verdict


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


def compare(adapter_dir: str | Path, benchmark: str | Path, *, out_dir: str | Path | None = None,
            base_model: str | None = None, max_tokens: int = 128, limit: int | None = None,
            ood: str | Path | None = None) -> Comparison:
    """Score base and adapter on ``benchmark`` (and the out-of-domain set ``ood``).

    Writes results.json, base_results.json, failures.jsonl and, with ``ood``,
    ood_results.json into ``out_dir`` (default: the adapter's eval/ folder).
    """
    from ..adapter.meta import load_meta
    from ..data.jsonl import write_jsonl
    from ..runtime.session import open_engine

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
    from ..runtime.session import open_engine

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
