"""The ``locollm`` / ``loco`` command line: a thin shell over the library.

Each command parses its flags, calls one library function and prints the result. Library
errors (:class:`LocollmError`) become a message and exit status 1 (a check found problems) or
2 (bad input or usage); no traceback reaches the user for a bad input.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from . import __version__
from .errors import LocollmError


def handle_errors(fn):
    """Turn library errors into a message on stderr and the error's exit status."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LocollmError as exc:
            click.secho(f"error: {exc.render()}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="locollm")
def cli() -> None:
    """locollm: train, measure and ship small LoRA adapters that run on a laptop.

    \b
    The guide's workflow:
      loco query "What is 47 + 35?" --no-adapter --save-log baseline_tests.jsonl
      locollm data check adapters/math/training/dataset.jsonl
      locollm train --domain math
      locollm eval --adapter math
      locollm export math --gguf --verify
      loco query "Tom has 47 apples and gets 35 more..." --adapter math
    """


# ----------------------------------------------------------------------------------- models
@cli.group()
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
    from .models import DEFAULT_MODEL, list_models

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
    from .models import resolve

    base = resolve(name)
    click.echo(str(base.gguf or base.hf_dir))
    if base.sha256:
        click.echo(f"sha256 {base.sha256}", err=True)


# ------------------------------------------------------------------------------------- data
@cli.group()
def data() -> None:
    """Training data: check it against the guide's checklist."""


@data.command("check")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--benchmark", type=click.Path(path_type=Path), help="Benchmark JSONL to check "
              "and to compare against the training set (contamination).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def data_check(dataset: Path, benchmark: Path | None, as_json: bool) -> None:
    """Check DATASET against the guide's data quality checklist.

    Exit status: 0 all pass (warnings allowed), 1 something failed, 2 unreadable input.

    \b
    Examples:
      locollm data check adapters/math/training/dataset.jsonl
      locollm data check train.jsonl --benchmark eval/benchmark.jsonl --json
    """
    from .datacheck import check_dataset

    report = check_dataset(dataset, benchmark)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        colors = {"pass": "green", "warn": "yellow", "fail": "red"}
        for item in report.items:
            click.echo(click.style(f"[{item.status:>4}] ", fg=colors[item.status]) +
                       f"{item.name}: {item.detail}")
            for problem in item.problems[:20]:
                click.echo(f"         {problem}")
            if len(item.problems) > 20:
                click.echo(f"         ... and {len(item.problems) - 20} more")
    sys.exit(1 if report.failed else 0)


# ------------------------------------------------------------------------------------ train
def train_options(fn):
    """The guide's training flags, shared by `locollm train` and scripts/fine_tune.py."""
    options = [
        click.option("--domain", help="Adapter domain: reads adapters/DOMAIN/training/"
                     "dataset.jsonl and writes adapters/DOMAIN/."),
        click.option("--config", "config_file", type=click.Path(path_type=Path),
                     help="YAML with TrainConfig keys (see configs/)."),
        click.option("--base-model", help="Embedded name, .gguf file, HF folder or hub id."),
        click.option("--dataset", help="Training JSONL."),
        click.option("--output", help="Adapter folder to write."),
        click.option("--lora-rank", type=int, help="LoRA rank (default 16)."),
        click.option("--lora-alpha", type=int, help="LoRA alpha (default 2 x rank)."),
        click.option("--epochs", type=float, help="Passes over the data (default 3)."),
        click.option("--max-steps", type=int, help="Stop after N optimizer steps."),
        click.option("--lr", type=float, help="Peak learning rate (default 2e-4)."),
        click.option("--batch-size", type=int, help="Examples per micro-batch."),
        click.option("--grad-accum", type=int, help="Micro-batches per optimizer step."),
        click.option("--max-seq-len", type=int, help="Longest example in tokens."),
        click.option("--backend", type=click.Choice(["auto", "unsloth", "peft"]),
                     help="Training backend (auto: unsloth on CUDA, else peft)."),
        click.option("--seed", type=int, help="Random seed."),
        click.option("--threads", type=int, help="CPU threads for torch."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def build_train_config(domain: str | None, config_file: Path | None, **flags):
    """defaults < domain config < --config < explicit flags."""
    from .config import TrainConfig, merge_config, read_yaml

    layers, sources = [], []
    if domain:
        root = Path("adapters") / domain
        layers.append({"dataset": str(root / "training" / "dataset.jsonl"),
                       "output": str(root)})
        sources.append(f"--domain {domain}")
        domain_cfg = Path("configs") / "domains" / f"{domain}.yaml"
        if domain_cfg.exists():
            layers.append(read_yaml(domain_cfg))
            sources.append(str(domain_cfg))
    if config_file:
        layers.append(read_yaml(config_file))
        sources.append(str(config_file))
    layers.append(flags)
    sources.append("command-line flags")
    return merge_config(TrainConfig, *layers, sources=sources)


def print_step(record: dict) -> None:
    """One progress line per step: loss, eval loss, tokens/s and ETA."""
    elapsed = record["elapsed"]
    step, steps = record["step"], record["steps"]
    eta = elapsed / step * (steps - step)
    evl = f"  eval {record['eval_loss']:.3f}" if "eval_loss" in record else ""
    click.echo(f"step {step:>4}/{steps}  loss {record['loss']:.3f}{evl}  "
               f"lr {record['lr']:.2e}  {elapsed:6.0f}s  eta {eta:5.0f}s", err=True)


@cli.command()
@train_options
@handle_errors
def train(domain, config_file, **flags) -> None:
    """Train a LoRA adapter (unsloth on CUDA, transformers + PEFT elsewhere).

    \b
    Examples:
      locollm train --domain math
      locollm train --dataset data.jsonl --output adapters/my-domain/ --lora-rank 16 \\
          --epochs 3 --lr 2e-4
    """
    from .train import train as run_train

    cfg = build_train_config(domain, config_file, **flags)
    click.echo(f"training {cfg.output} on {cfg.dataset} (base {cfg.base_model})", err=True)
    result = run_train(cfg, on_step=print_step)
    h = result.history
    click.echo(f"adapter written to {result.output} ({result.backend} on {result.device}, "
               f"{result.n_train} train / {result.n_eval} held-out examples, "
               f"{h.seconds:.0f}s, {h.total_tokens / max(h.seconds, 1e-9):.0f} tokens/s)")


# ----------------------------------------------------------------------------------- export
@cli.command()
@click.argument("adapter")
@click.option("--gguf/--no-gguf", default=True, help="Write the LoRA-only GGUF (default on).")
@click.option("--verify", is_flag=True, help="Check the GGUF numerically against PEFT.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Where to write it.")
@handle_errors
def export(adapter: str, gguf: bool, verify: bool, output: Path | None) -> None:
    """Export ADAPTER (a folder or a domain under adapters/) for llama.cpp.

    \b
    Examples:
      locollm export math --gguf
      locollm export adapters/math --verify
    """
    from .adapter import resolve_adapter
    from .export import export_lora_gguf, verify_export

    folder = resolve_adapter(adapter)
    if gguf:
        path = export_lora_gguf(folder, output)
        click.echo(f"LoRA GGUF written to {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if verify:
        report = verify_export(folder)
        click.echo(f"verified: logit-change correlation {report.delta_correlation:.4f}, "
                   f"top-1 agreement {report.top1_agreement:.3f} (base alone "
                   f"{report.base_top1_agreement:.3f}) over {report.n_positions} positions")


# ------------------------------------------------------------------------------------ query
@cli.command()
@click.argument("text")
@click.option("--adapter", help="Adapter folder or domain under adapters/.")
@click.option("--no-adapter", is_flag=True, help="Use the bare base model (baseline testing).")
@click.option("--base-model", help="Base model (default: the adapter's, else gemma-3-270m).")
@click.option("--instruction", help="Use TEXT as the input of this instruction.")
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=0.0, show_default=True)
@click.option("--save-log", type=click.Path(path_type=Path),
              help="Append the query, answer and settings to this JSONL log.")
@handle_errors
def query(text, adapter, no_adapter, base_model, instruction, max_tokens, temperature,
          save_log) -> None:
    """Ask the base model or an adapter one question.

    \b
    Examples:
      loco query "What is 47 + 35?" --no-adapter --save-log baseline_tests.jsonl
      loco query "Tom has 47 apples and gets 35 more. How many now?" --adapter math
    """
    from .errors import LocollmError
    from .runtime.query import append_log
    from .runtime.query import query as run_query

    if adapter and no_adapter:
        raise LocollmError("--adapter and --no-adapter exclude each other")
    if adapter and instruction is None:
        instruction = _default_instruction(adapter)
    result = run_query(text, adapter=None if no_adapter else adapter, base_model=base_model,
                       instruction=instruction, max_tokens=max_tokens, temperature=temperature)
    click.echo(result.answer)
    c = result.completion
    click.echo(f"[{result.adapter or 'base'}: {c.completion_tokens} tokens in "
               f"{c.latency_s:.2f}s]", err=True)
    if save_log:
        append_log(save_log, result)


def _default_instruction(adapter: str) -> str | None:
    """The instruction most of an adapter's training data used, if one dominates."""
    from collections import Counter

    from .adapter import resolve_adapter
    from .data import read_jsonl

    dataset = resolve_adapter(adapter) / "training" / "dataset.jsonl"
    if not dataset.exists():
        return None
    counts = Counter(e.instruction for e in read_jsonl(dataset).examples)
    if not counts:
        return None
    top, n = counts.most_common(1)[0]
    return top if n * 2 > sum(counts.values()) else None


# ------------------------------------------------------------------------------------- eval
@cli.command("eval")
@click.option("--adapter", help="Adapter folder or domain under adapters/.")
@click.option("--benchmark", type=click.Path(path_type=Path),
              help="Benchmark JSONL (default: the adapter's eval/benchmark.jsonl).")
@click.option("--output", type=click.Path(path_type=Path),
              help="Score one model only and write its results JSON here.")
@click.option("--no-adapter", is_flag=True, help="Score the base model only.")
@click.option("--base-model", help="Base model (default: the adapter's).")
@click.option("--limit", type=int, help="Score only the first N benchmark items.")
@click.option("--max-tokens", type=int, default=128, show_default=True)
@handle_errors
def eval_cmd(adapter, benchmark, output, no_adapter, base_model, limit, max_tokens) -> None:
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
    from .adapter import resolve_adapter
    from .errors import LocollmError
    from .evaluate import compare, evaluate_one

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
    cmp = compare(folder, benchmark, base_model=base_model, max_tokens=max_tokens, limit=limit)
    click.echo(f"base:    {cmp.base.correct}/{cmp.base.total} = {cmp.base.score:.1%}")
    click.echo(f"adapter: {cmp.adapter.correct}/{cmp.adapter.total} = {cmp.adapter.score:.1%}")
    click.echo(f"difference: {cmp.points:+.1f} points -> verdict: {cmp.verdict.upper()} "
               f"({cmp.advice})")
    for level, score in cmp.adapter.by_difficulty.items():
        click.echo(f"  {level:<8} base {cmp.base.by_difficulty.get(level, 0):.0%}  "
                   f"adapter {score:.0%}")
