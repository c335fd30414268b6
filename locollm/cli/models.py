"""``locollm models``: the embedded default base, local files, hub ids."""

from __future__ import annotations

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
