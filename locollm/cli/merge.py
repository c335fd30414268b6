"""``locollm merge``: several adapters of one base combined into one new adapter folder."""

from __future__ import annotations

from pathlib import Path

import click

from .common import handle_errors

METHOD_NAMES = ["cat", "svd", "linear", "ties", "dare"]  # locollm.adapter.merge.METHODS


def _weights(ctx, param, value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers "
                                 "(e.g. 0.5,0.5)") from None


@click.command()
@click.argument("adapters", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="The merged adapter folder to write (e.g. adapters/math-and-code).")
@click.option("--weights", callback=_weights,
              help="One weight per adapter, comma-separated (default 1 each; 0.5,0.5 "
                   "averages two).")
@click.option("--method", type=click.Choice(METHOD_NAMES), default="cat", show_default=True,
              help="cat: exact weighted sum of the updates (rank = sum of ranks); svd: that "
                   "sum at the largest source rank; linear: A and B averaged separately "
                   "(equal ranks, approximate); ties / dare: pruned to --density first "
                   "(equal ranks).")
@click.option("--density", type=float, default=0.5, show_default=True,
              help="ties / dare: share of each adapter's values kept.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="dare: seed of its random drop.")
@click.option("--force", is_flag=True, help="Replace an existing folder at --output.")
@handle_errors
def merge(adapters: tuple[str, ...], output: Path, weights: list[float] | None, method: str,
          density: float, seed: int, force: bool) -> None:
    """Merge ADAPTERS (folders or domains under adapters/) into one adapter folder.

    The adapters must share the base model and the prompt format. The result is a normal
    adapter folder: export it, evaluate it and serve it like a trained one. Its
    training/merge.yaml and TRAINING_LOG.md record the sources and weights; eval/benchmark.jsonl
    joins the sources' benchmarks.

    \b
    Examples:
      locollm merge math code -o adapters/math-code
      locollm merge adapters/math adapters/code --weights 0.5,0.5 --method linear \\
          -o adapters/math-code
      locollm merge math code --method ties --density 0.3 -o adapters/math-code
      locollm export adapters/math-code --gguf --verify
    """
    from ..adapter.merge import MergeConfig, merge_adapters
    from ..adapter.meta import resolve_adapter

    folders = [resolve_adapter(a) for a in adapters]
    result = merge_adapters(MergeConfig(folders, output, weights, method, density, seed,
                                        force))
    parts = ", ".join(f"{s.meta.name} x {s.weight:g}" for s in result.sources)
    m = result.meta
    click.echo(f"merged {parts} ({method}) into {result.output}: rank {m.lora_rank}, "
               f"alpha {m.lora_alpha}, targets {', '.join(m.target_modules)}")
    click.echo(f"next: locollm export {result.output} --gguf --verify, then "
               f"locollm eval --adapter {result.output}")
