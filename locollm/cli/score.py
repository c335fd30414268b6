"""``locollm score``: score answers produced anywhere against a benchmark, no model needed."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import handle_errors
from .eval import judge_config, judge_options


@click.command("score")
@click.argument("predictions", type=click.Path(path_type=Path))
@click.option("--benchmark", type=click.Path(path_type=Path), required=True,
              help="Benchmark JSONL the predictions answer.")
@click.option("--output", type=click.Path(path_type=Path),
              help="Write the result JSON here (the format `locollm eval --output` writes).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--show", type=int, default=None,
              help="Print this many per-item verdicts (default: all).")
@judge_options
@handle_errors
def score(predictions, benchmark, output, as_json, show, scorer, judge_url, judge_model,
          judge_runs, progress) -> None:
    """Score PREDICTIONS.jsonl (from vLLM, Ollama, a colleague's run) against a benchmark.

    A predictions line is {"prediction": "..."}, matched to the benchmark by "id" when
    both have one, else line by line. A benchmark line holds the reference in
    "expected_output" (or "output") and may name its scorer in "evaluation_type":
    numeric, multiple_choice, math, exact, contains, rouge, json (the reply's first JSON
    object, keys in any order), code (runs its "tests") or judge (an LLM judge through
    --judge-url).

    \b
    Examples:
      locollm score preds.jsonl --benchmark adapters/math/eval/benchmark.jsonl
      locollm score preds.jsonl --benchmark bench.jsonl --output results.json --json
      locollm score answers.jsonl --benchmark essays.jsonl --scorer judge \\
          --judge-url http://127.0.0.1:8000/v1 --judge-model gemma-3-270m
    """
    from dataclasses import asdict

    from ..evaluate.predictions import score_predictions
    from ..evaluate.report import result_lines
    from ..evaluate.scorers import ScoringConfig

    scoring = ScoringConfig(scorer, judge=judge_config(judge_url, judge_model, judge_runs))
    result = score_predictions(predictions, benchmark, output=output, scoring=scoring,
                               progress=False if as_json and progress is None else progress)
    if as_json:
        click.echo(json.dumps(asdict(result), indent=1, ensure_ascii=False))
        return
    for line in result_lines(result, len(result.items) if show is None else show):
        click.echo(line)
    if output:
        click.echo(f"-> {output}")
