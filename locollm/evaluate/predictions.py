"""``locollm score``: answers produced anywhere (vLLM, Ollama, a colleague's run), scored with
eval's scorers, no model needed.

A predictions file is JSONL, one ``{"prediction": "..."}`` per line, matched to the benchmark by
``id`` when every prediction and every benchmark item has one, else line by line. The result is
the same self-describing JSON as ``locollm eval --output`` writes, with ``runtime:
predictions`` and the predictions file's sha256 in its settings.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, Problem
from ..paths import sha256_file
from .benchmark import (
    BenchItem,
    benchmark_sha256,
    load_benchmark,
    raise_problems,
    read_objects,
)
from .progress import Progress
from .results import BenchResult, ItemResult, build_result
from .scorers import AUTO, ScoringConfig, score_item, scorer_for


@dataclass
class Prediction:
    """One answer to score."""

    line: int  # line in the predictions file
    text: str
    id: str | None = None


def read_predictions(path: str | Path) -> list[Prediction]:
    """Read a predictions JSONL, every bad line collected before raising.

    Raises:
        DataError: unreadable file, a line without a string ``prediction``, no predictions.
    """
    path = Path(path)
    fix = 'write one {"prediction": "..."} per line (an "id" to match the benchmark\'s)'
    objects, problems = read_objects(path, "predictions file", fix)
    found = []
    for number, obj in objects:
        if not isinstance(obj, dict) or not isinstance(obj.get("prediction"), str):
            problems.append(Problem("no string 'prediction'", path, number, fix))
            continue
        ident = obj.get("id")
        found.append(Prediction(number, obj["prediction"], None if ident is None else
                                str(ident)))
    raise_problems(problems, "predictions")
    if not found:
        raise DataError("no predictions", file=path, fix=fix)
    return found


def match(predictions: list[Prediction], items: list[BenchItem], path: Path
          ) -> list[tuple[BenchItem, Prediction]]:
    """Pair each benchmark item with its prediction: by ``id`` when all have one, else in order.

    Raises:
        DataError: duplicate or unknown ids, unanswered items, or counts that differ.
    """
    if all(p.id for p in predictions) and all(i.id for i in items):
        by_id: dict[str, Prediction] = {}
        for p in predictions:
            if p.id in by_id:
                raise DataError(f"id {p.id!r} is predicted twice (first on line "
                                f"{by_id[p.id].line})", file=path, line=p.line)
            by_id[p.id] = p
        known = {i.id for i in items}
        unknown = [p for p in predictions if p.id not in known]
        if unknown:
            raise DataError(f"{len(unknown)} prediction(s) for ids not in the benchmark, "
                            f"first {unknown[0].id!r}", file=path, line=unknown[0].line,
                            fix="check the benchmark file is the one these answer")
        missing = [i for i in items if i.id not in by_id]
        if missing:
            raise DataError(f"{len(missing)} benchmark item(s) have no prediction, first id "
                            f"{missing[0].id!r}", file=path,
                            fix="predict every item (an empty string scores as wrong)")
        return [(i, by_id[i.id]) for i in items]
    if len(predictions) != len(items):
        raise DataError(f"{len(predictions)} predictions for {len(items)} benchmark items "
                        "(matched line by line: no ids on both sides)", file=path,
                        fix='write one line per item, or give both an "id"')
    return list(zip(items, predictions, strict=True))


def score_predictions(predictions: str | Path, benchmark: str | Path, *,
                      output: str | Path | None = None, scoring: ScoringConfig | None = None,
                      progress: bool | None = None) -> BenchResult:
    """Score a predictions file against a benchmark; write the result JSON to ``output``."""
    import time

    from .runner import SLOW_SCORERS, preflight

    scoring = scoring or ScoringConfig(AUTO)
    path = Path(predictions)
    items = load_benchmark(benchmark, need_prompt=False)
    pairs = match(read_predictions(path), items, path)
    preflight(items, scoring)
    bar = Progress({"score": len(pairs)}, progress, desc="score")
    start = time.perf_counter()

    def one(pair: tuple[BenchItem, Prediction]) -> ItemResult:
        item, pred = pair
        s = score_item(pred.text, item, scoring)
        bar.done("score", s.correct)
        return ItemResult(item.line, "", item.reference, pred.text, s.scorer, s.correct, s.value,
                          s.got, s.wanted, s.detail, item.instruction, item.input,
                          item.difficulty, item.id, judge_runs=s.runs)

    slow = any(scorer_for(i, scoring) in SLOW_SCORERS for i, _ in pairs)
    try:
        if slow:
            with ThreadPoolExecutor(max_workers=4) as pool:
                scored = list(pool.map(one, pairs))
        else:
            scored = [one(p) for p in pairs]
    finally:
        bar.close()
    settings = {"scorer": scoring.default, "predictions": str(path),
                "predictions_sha256": sha256_file(path),
                "rouge_threshold": scoring.rouge_threshold}
    result = build_result(path.stem, benchmark, benchmark_sha256(benchmark), scored,
                          time.perf_counter() - start, runtime="predictions",
                          settings=settings)
    if output:
        result.save(output)
    return result
