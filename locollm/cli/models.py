"""``locollm models``: the embedded default base, local files, hub ids, conversion to GGUF."""

from __future__ import annotations

from pathlib import Path

import click

from .common import handle_errors


@click.group()
def models() -> None:
    """Base models: the embedded default, local files, hub ids."""


@models.command("list")
@handle_errors
def models_list() -> None:
    """List the embedded base models.

    \b
    Example:
      locollm models list
    """
    from ..models import DEFAULT_MODEL, list_models

    for row in list_models():
        mark = "*" if row["name"] == DEFAULT_MODEL else " "
        click.echo(f"{mark} {row['name']:<16} {row['status']:<12} {row['description']}")


@models.command("path")
@click.argument("name", default="gemma-3-270m")
@handle_errors
def models_path(name: str) -> None:
    """Resolve NAME and print the GGUF path (assembling the embedded model if needed).

    \b
    Examples:
      locollm models path gemma-3-270m
      locollm models path ./my-model.gguf
    """
    from ..models import resolve

    base = resolve(name)
    click.echo(str(base.gguf or base.hf_dir))
    if base.sha256:
        click.echo(f"sha256 {base.sha256}", err=True)


@models.command("convert")
@click.argument("src")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="GGUF to write (default: the model cache, where serving an adapter "
                   "trained on SRC finds it).")
@click.option("--quant", type=click.Choice(["q4_k_m", "q5_k_m", "q8_0", "f16", "f32"]),
              default="q8_0", show_default=True, help="Quantization of the GGUF.")
@click.option("--pre-tokenizer", help="llama.cpp pre-tokenizer name, for a BPE tokenizer it "
              "does not recognise (one you trained; e.g. qwen2, llama-bpe).")
@click.option("--verify", is_flag=True, help="Compare the GGUF with the model in "
              "transformers, and check that generation stops.")
@handle_errors
def models_convert(src: str, output: Path | None, quant: str, pre_tokenizer: str | None,
                   verify: bool) -> None:
    """Convert a Hugging Face model SRC (a folder or a hub id) to a GGUF for llama.cpp.

    Weights, tokenizer, special tokens and chat template, with llama.cpp's own converter (of
    the llama.cpp locollm runs), then quantized.

    \b
    Examples:
      locollm models convert Qwen/Qwen2.5-3B-Instruct --quant q4_k_m
      locollm models convert ./my-model -o my-model-q8_0.gguf --verify
    """
    from ..export.convert import convert_model

    done = convert_model(src, output, quant, pre_tokenizer=pre_tokenizer, verify=verify)
    click.echo(f"{quant.upper()} GGUF written to {done.path} "
               f"({done.path.stat().st_size / 1e6:.1f} MB, {done.seconds:.0f} s)")
    if done.agreement is not None:
        a = done.agreement
        click.echo(f"verified against transformers: top-1 agreement {a.top1_agreement:.3f}, "
                   f"KL {a.kl:.4f}, tokens in common {a.token_agreement:.3f} over "
                   f"{a.n_positions} positions")
    if done.stops is not None:
        click.echo(f"generation stops at {done.stops.token_text!r} (id {done.stops.token})")
