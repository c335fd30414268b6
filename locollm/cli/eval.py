"""``locollm eval`` (and ``scripts/evaluate.py``): adapter vs base, the paired gap, the guide's
whole verdict, drift between the served GGUF and training precision, the failures."""

from __future__ import annotations

from pathlib import Path

import click

from .common import handle_errors

# locollm.evaluate.scorers.SCORER_CHOICES, kept here so --help stays light
SCORERS = ("auto", "numeric", "multiple_choice", "math", "exact", "contains", "rouge", "json",
           "code", "judge")


def judge_options(fn):
    """The scorer flags ``eval`` and ``score`` share: default scorer and the LLM judge."""
    options = [
        click.option("--scorer", type=click.Choice(SCORERS), default="auto", show_default=True,
                     help="Scorer for items without an evaluation_type (auto: from the "
                          "reference)."),
        click.option("--judge-url", envvar="LOCOLLM_JUDGE_URL",
                     help="OpenAI-compatible endpoint of the LLM judge, e.g. "
                          "http://127.0.0.1:8000/v1 (env LOCOLLM_JUDGE_URL)."),
        click.option("--judge-model", envvar="LOCOLLM_JUDGE_MODEL",
                     help="Model the judge endpoint serves (env LOCOLLM_JUDGE_MODEL)."),
        click.option("--judge-runs", type=click.IntRange(1, 20), default=3, show_default=True,
                     help="Gradings per judge item (mean and spread)."),
        click.option("--progress/--no-progress", default=None,
                     help="Progress bar on stderr (default: on a terminal)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def judge_config(url: str | None, model: str | None, runs: int):
    """A JudgeConfig from the flags, or None without a URL."""
    if not url:
        return None
    from ..errors import ConfigError
    from ..evaluate.judge import JudgeConfig

    if not model:
        raise ConfigError("--judge-url needs --judge-model (the model that endpoint serves)")
    return JudgeConfig(url, model, runs=runs)


@click.command("eval")
@click.option("--adapter", help="Adapter folder or domain under adapters/.")
@click.option("--benchmark", type=click.Path(path_type=Path),
              help="Benchmark JSONL (default: the adapter's eval/benchmark.jsonl).")
@click.option("--output", type=click.Path(path_type=Path),
              help="Score one model only and write its results JSON here.")
@click.option("--no-adapter", is_flag=True, help="Score the base model only.")
@click.option("--base-model", help="Base model (default: the adapter's).")
@click.option("--ood", type=click.Path(path_type=Path),
              help="Out-of-domain JSONL (default: the adapter's eval/ood.jsonl if present).")
@click.option("--limit", type=click.IntRange(min=1), help="Score only the first N items.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--runtime", type=click.Choice(["llama.cpp", "transformers", "both"]),
              default="llama.cpp", show_default=True,
              help="llama.cpp: the served GGUF; transformers: the PEFT adapter at training "
                   "precision; both: side by side (the drift).")
@click.option("--one-by-one", is_flag=True,
              help="Decode one request at a time instead of in batches.")
@click.option("--show-failures", type=int, default=5, show_default=True,
              help="Print this many of the adapter's wrong answers.")
@judge_options
@handle_errors
def eval_cmd(adapter, benchmark, output, no_adapter, base_model, ood, limit, max_tokens,
             runtime, one_by_one, show_failures, scorer, judge_url, judge_model, judge_runs,
             progress) -> None:
    """Score adapter vs base on a held-out benchmark and give the guide's verdict.

    With only --adapter, both are scored on the same items and the report gives the gap
    with its 95% bootstrap interval and exact McNemar p-value (also per difficulty), the
    out-of-domain check, drift between the served GGUF and training precision, and the
    guide's verdict: strong needs 15+ points AND an out-of-domain drop of at most 5 points.
    eval/results.json, base_results.json, ood_results.json, comparison.json and
    failures.jsonl are written in the adapter folder (--runtime transformers writes
    results_transformers.json and base_results_transformers.json).

    With --output, one model is scored (the adapter, or the base with --no-adapter) and
    its result written there.

    Each benchmark line may name its scorer in "evaluation_type" (numeric,
    multiple_choice, math, exact, contains, rouge, json, code, judge); others use --scorer.

    \b
    Examples:
      locollm eval --adapter math
      locollm eval --adapter math --runtime both       # served GGUF vs training precision
      locollm eval --adapter adapters/math/ --benchmark adapters/math/eval/benchmark.jsonl \\
          --output adapters/math/eval/results.json
      locollm eval --no-adapter --benchmark adapters/math/eval/benchmark.jsonl \\
          --output adapters/math/eval/base_results.json
    """
    from ..adapter.meta import resolve_adapter
    from ..errors import LocollmError
    from ..evaluate.report import comparison_lines, result_lines
    from ..evaluate.runner import EvalOptions, compare, evaluate_one

    options = EvalOptions(max_tokens=max_tokens, limit=limit, scorer=scorer, runtime=runtime,
                          batched=not one_by_one, progress=progress,
                          judge=judge_config(judge_url, judge_model, judge_runs))
    if no_adapter or not adapter or output:
        folder = None if no_adapter or not adapter else resolve_adapter(adapter)
        if folder is not None and benchmark is None:
            benchmark = folder / "eval" / "benchmark.jsonl"
        if not benchmark or not output:
            raise LocollmError("scoring one model needs --benchmark and --output",
                               fix="or pass only --adapter DOMAIN to compare with the base")
        result = evaluate_one(benchmark, output, folder, base_model, options)
        for line in result_lines(result):
            click.echo(line)
        click.echo(f"-> {output}")
        return
    folder = resolve_adapter(adapter)
    benchmark = benchmark or folder / "eval" / "benchmark.jsonl"
    if ood is None and (folder / "eval" / "ood.jsonl").exists():
        ood = folder / "eval" / "ood.jsonl"
    cmp = compare(folder, benchmark, base_model=base_model, ood=ood, options=options)
    for line in comparison_lines(cmp, show_failures):
        click.echo(line)
