"""``locollm adapters``: start a folder, register it, validate it (the guide's Phases 1 and 5)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import handle_errors


@click.group()
def adapters() -> None:
    """Adapter folders and adapters/registry.yaml (the guide's Phase 5)."""


@adapters.command("new")
@click.argument("domain")
@click.option("--root", type=click.Path(path_type=Path), default=Path("adapters"),
              show_default=True, help="Folder that holds the adapters.")
@handle_errors
def adapters_new(domain: str, root: Path) -> None:
    """Start a new adapter folder in the guide's layout (Phase 1).

    Writes training/TRAINING_LOG.md (baseline and failure-analysis tables, data sources,
    checklist), training/train_config.yaml (the default config) and eval/. DOMAIN must be a
    lowercase slug; an existing folder is never overwritten.

    \b
    Example:
      locollm adapters new legal-qa
    """
    from ..adapter.scaffold import new_adapter

    folder = new_adapter(domain, root)
    click.echo(f"created {folder}/\nnext (Phase 1): 20+ baseline queries, each logged:\n"
               f"  loco query \"...\" --no-adapter --save-log "
               f"{folder}/training/baseline_tests.jsonl")


@adapters.command("register")
@click.argument("domain")
@click.option("--version", help='Adapter version, e.g. "1.0.0" (new entries: 1.0.0).')
@click.option("--author", "authors", multiple=True, help="An author, e.g. \"Team, ISYS6020\" "
              "(repeat for several).")
@click.option("--description", help="One line on what the adapter does.")
@click.option("--tag", "tags", multiple=True, help="A search tag (repeat).")
@click.option("--keyword", "router_keywords", multiple=True,
              help="A router keyword: a word or phrase that picks this adapter (repeat).")
@click.option("--created", help='When it was made, e.g. "2026-S2" (new entries: the training '
              "date).")
@click.option("--registry", type=click.Path(path_type=Path),
              help="Registry file (default adapters/registry.yaml).")
@handle_errors
def adapters_register(domain: str, registry: Path | None, **fields) -> None:
    """Write or refresh DOMAIN's entry in the registry from its folder.

    Base model, quantization, rank, scores, improvement and size are read from the folder
    (locollm.json, eval/results.json, eval/base_results.json). The other fields come from the
    flags, else keep their registry value. Other entries and comments are left untouched.

    \b
    Examples:
      locollm adapters register math --author "Team Pi, ISYS6020" \\
          --description "Arithmetic word problems, step by step" \\
          --tag math --keyword add --keyword "how many" --keyword total
      locollm adapters register math          (after a new `locollm eval --adapter math`)
    """
    from ..adapter.register import register

    result = register(domain, registry, **fields)
    e = result.entry
    click.echo(f"{result.domain}: {e.benchmark_score:.1%} vs base {e.base_model_score:.1%}: "
               f"{e.improvement}, {e.size_mb} MB -> {result.path}")
    for problem in result.problems:
        click.secho(f"  to do: {problem}", fg="yellow")


@adapters.command("validate")
@click.argument("domains", nargs=-1)
@click.option("--registry", type=click.Path(path_type=Path),
              help="Registry file (default adapters/registry.yaml).")
@handle_errors
def adapters_validate(domains: tuple[str, ...], registry: Path | None) -> None:
    """Check adapter folders against the guide's layout and the registry.

    Without DOMAIN, checks every folder under adapters/ and every registry entry. Exit status:
    0 complete, 1 something missing, stale or invalid.

    \b
    Examples:
      locollm adapters validate
      locollm adapters validate math
    """
    from ..adapter.validate import validate

    report = validate(list(domains) or None, registry)
    for problem in report.file_problems:
        click.secho(f"[fail] {problem}", fg="red")
    for domain, problems in report.adapters.items():
        if not problems:
            click.secho(f"[ ok ] {domain}", fg="green")
            continue
        click.secho(f"[fail] {domain}: {len(problems)} problem(s)", fg="red")
        for problem in problems:
            click.echo(f"         {problem}")
    if not report.adapters:
        click.echo("no adapter folders found")
    sys.exit(0 if report.ok else 1)
