"""``locollm eval`` (and ``scripts/evaluate.py``): adapter vs base, the verdict, the failures."""

from __future__ import annotations

from pathlib import Path

import click

from .common import handle_errors


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
@click.option("--limit", type=int, help="Score only the first N benchmark items.")
@click.option("--max-tokens", type=int, default=128, show_default=True)
@click.option("--show-failures", type=int, default=5, show_default=True,
              help="Print this many of the adapter's wrong answers.")
@handle_errors
def eval_cmd(adapter, benchmark, output, no_adapter, base_model, ood, limit, max_tokens,
             show_failures) -> None:
    """Score adapter vs base on a held-out benchmark and give the guide's verdict.

    With only --adapter, both are scored and eval/results.json and eval/base_results.json are
    written in the adapter folder. With --output, one model is scored (the adapter, or the
    base with --no-adapter) and its result written there.

    \b
    Examples:
      locollm eval --adapter math
      locollm eval --adapter adapters/math/ --benchmark adapters/math/eval/benchmark.jsonl \\
          --output adapters/math/eval/results.json
      locollm eval --no-adapter --benchmark adapters/math/eval/benchmark.jsonl \\
          --output adapters/math/eval/base_results.json
    """
    from ..adapter.meta import resolve_adapter
    from ..errors import LocollmError
    from ..evaluate.runner import compare, evaluate_one

    if no_adapter or not adapter or output:
        folder = None if no_adapter or not adapter else resolve_adapter(adapter)
        if folder is not None and benchmark is None:
            benchmark = folder / "eval" / "benchmark.jsonl"
        if not benchmark or not output:
            raise LocollmError("scoring one model needs --benchmark and --output",
                               fix="or pass only --adapter DOMAIN to compare with the base")
        result = evaluate_one(benchmark, output, folder, base_model, max_tokens)
        click.echo(f"{result.model}: {result.correct}/{result.total} = {result.score:.1%} "
                   f"-> {output}")
        return
    folder = resolve_adapter(adapter)
    benchmark = benchmark or folder / "eval" / "benchmark.jsonl"
    if ood is None and (folder / "eval" / "ood.jsonl").exists():
        ood = folder / "eval" / "ood.jsonl"
    cmp = compare(folder, benchmark, base_model=base_model, max_tokens=max_tokens, limit=limit,
                  ood=ood)
    _print_comparison(cmp, show_failures)


def _print_comparison(cmp, show_failures: int) -> None:
    click.echo(f"base:    {cmp.base.correct}/{cmp.base.total} = {cmp.base.score:.1%}")
    click.echo(f"adapter: {cmp.adapter.correct}/{cmp.adapter.total} = {cmp.adapter.score:.1%}")
    click.echo(f"difference: {cmp.points:+.1f} points -> verdict: {cmp.verdict.upper()} "
               f"({cmp.advice})")
    for level, score in cmp.adapter.by_difficulty.items():
        click.echo(f"  {level:<8} base {cmp.base.by_difficulty.get(level, 0):.0%}  "
                   f"adapter {score:.0%}")
    if cmp.ood:
        click.echo(f"out-of-domain: base {cmp.ood.base.score:.1%}, adapter "
                   f"{cmp.ood.adapter.score:.1%} ({cmp.ood.degradation_points:+.1f} points "
                   f"lost)")
    failures = cmp.failures
    if failures and show_failures:
        click.echo(f"{len(failures)} failure(s); the first {min(show_failures, len(failures))} "
                   f"(all in eval/failures.jsonl):")
        from ..evaluate.scorers import extract_answer

        for item in failures[:show_failures]:
            click.echo(f"  line {item.line}: expected {extract_answer(item.expected)!r}, got "
                       f"{extract_answer(item.response)!r}: {item.input[:60]!r}")
