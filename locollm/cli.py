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
    """Training data: check, convert, split and synthesize it (the guide's Phase 2)."""


@data.command("check")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--benchmark", type=click.Path(path_type=Path), help="Benchmark JSONL to check "
              "and to compare against the training set (contamination).")
@click.option("--log", type=click.Path(path_type=Path), help="TRAINING_LOG.md that must name "
              "the sources (default: found next to the dataset).")
@click.option("--min-train", type=int, default=500, show_default=True,
              help="Training examples the guide asks for.")
@click.option("--min-bench", type=int, default=50, show_default=True,
              help="Benchmark examples the guide asks for.")
@click.option("--threshold", type=float, default=0.8, show_default=True,
              help="Jaccard similarity at which two prompts are near-duplicates.")
@click.option("--max-seq-len", type=int, default=512, show_default=True,
              help="Training max_seq_len to compare example lengths with.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def data_check(dataset: Path, benchmark: Path | None, log: Path | None, min_train: int,
               min_bench: int, threshold: float, max_seq_len: int, as_json: bool) -> None:
    """Check DATASET against the guide's data quality checklist.

    One line per checklist item: size, schema and fields, exact and near-duplicates,
    benchmark contamination, difficulty spread, lengths, empty and repeated outputs, and
    sources named in TRAINING_LOG.md. Exit status: 0 nothing failed (warnings allowed),
    1 something failed, 2 the input cannot be read.

    \b
    Examples:
      locollm data check adapters/math/training/dataset.jsonl \\
          --benchmark adapters/math/eval/benchmark.jsonl
      locollm data check train.jsonl --benchmark eval/benchmark.jsonl --json
    """
    from .datacheck import check_dataset, render

    report = check_dataset(dataset, benchmark, min_train, min_bench, threshold=threshold,
                           max_tokens=max_seq_len, log=log)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        colors = {"pass": "green", "warn": "yellow", "fail": "red"}
        for status, text in render(report):
            mark = click.style(f"[{status:>4}] ", fg=colors[status]) if status else ""
            click.echo(mark + text)
    sys.exit(1 if report.failed else 0)


@data.command("convert")
@click.argument("source")
@click.option("--from", "fmt", required=True, type=click.Choice(
    ["gsm8k", "math", "aqua_rat", "alpaca", "codealpaca", "squad"]),
    help="The source dataset's format.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="JSONL to write.")
@click.option("--split", default="train", show_default=True,
              help="Split of a hub dataset or hub-layout folder.")
@click.option("--subset", help="Hub config, e.g. main (gsm8k) or algebra (MATH).")
@click.option("--limit", type=int, help="Convert only the first N source rows.")
@handle_errors
def data_convert(source: str, fmt: str, output: Path, split: str, subset: str | None,
                 limit: int | None) -> None:
    """Convert a public dataset (guide Option A) into locollm JSONL.

    SOURCE is a hub name (needs the network), a local folder in the hub's layout, or one
    local file in the dataset's own format (.jsonl, .json, .parquet, .csv). Each row keeps a
    `source` field, so TRAINING_LOG.md can name it.

    \b
    Examples:
      locollm data convert --from gsm8k openai/gsm8k --subset main -o gsm8k.jsonl
      locollm data convert --from alpaca alpaca_data.json -o alpaca.jsonl --limit 1000
      locollm data convert --from squad train-v1.1.json -o squad.jsonl
    """
    from .convert import convert

    result = convert(fmt, source, output, split=split, subset=subset, limit=limit)
    click.echo(f"wrote {result.written} examples to {result.output} "
               f"(read {result.rows_read} rows)")
    for reason, n in result.skipped.most_common():
        click.echo(f"  skipped {n}: {reason}")


@data.command("split")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--train-out", required=True, type=click.Path(path_type=Path),
              help="Training JSONL to write.")
@click.option("--bench-out", required=True, type=click.Path(path_type=Path),
              help="Benchmark JSONL to write.")
@click.option("--bench-size", type=int, help="Benchmark examples (default: --bench-fraction).")
@click.option("--bench-fraction", type=float, default=0.1, show_default=True,
              help="Share of the pool for the benchmark.")
@click.option("--seed", type=int, default=0, show_default=True, help="Shuffle seed.")
@click.option("--threshold", type=float, default=0.8, show_default=True,
              help="Jaccard similarity at which prompts are near-duplicates.")
@handle_errors
def data_split(dataset: Path, train_out: Path, bench_out: Path, bench_size: int | None,
               bench_fraction: float, seed: int, threshold: float) -> None:
    """Split DATASET into training and benchmark files with no contamination.

    Near-duplicate prompts are grouped and a group never straddles the split; the benchmark
    keeps the pool's difficulty mix. The same seed always writes the same files.

    \b
    Examples:
      locollm data split pool.jsonl --train-out adapters/x/training/dataset.jsonl \\
          --bench-out adapters/x/eval/benchmark.jsonl --bench-size 60 --seed 1
    """
    from .split import split_dataset

    r = split_dataset(dataset, train_out, bench_out, bench_size=bench_size,
                      bench_fraction=bench_fraction, seed=seed, threshold=threshold)
    levels = ", ".join(f"{k} {v}" for k, v in sorted(r.benchmark_levels.items()) if k)
    click.echo(f"training {r.n_train} -> {r.train}; benchmark {r.n_benchmark} -> "
               f"{r.benchmark}" + (f" ({levels})" if levels else ""))
    click.echo(f"{r.groups_kept_whole} near-duplicate group(s) kept on one side "
               f"(largest {r.largest_group})")


@data.command("synth")
@click.option("--endpoint", required=True, help="OpenAI-compatible base URL, e.g. "
              "https://api.openai.com/v1 or http://127.0.0.1:8000/v1.")
@click.option("--model", required=True, help="Model name the endpoint expects.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Accepted examples (JSONL; an existing file is extended).")
@click.option("--domain", required=True, help="The {domain} of the guide's template.")
@click.option("--criteria", help="The template's quality criteria.")
@click.option("--format", "format_", help="The template's format requirements.")
@click.option("--detail", help="The template's level of detail.")
@click.option("--template", type=click.Path(path_type=Path),
              help="Your own template file ({domain} {criteria} {format} {detail}).")
@click.option("-n", "--count", type=int, default=50, show_default=True,
              help="Requests to send in all.")
@click.option("--batch-size", type=int, default=10, show_default=True,
              help="Requests per batch; files are written after each batch.")
@click.option("--workers", type=int, default=4, show_default=True,
              help="Requests in flight at once.")
@click.option("--temperature", type=float, default=1.0, show_default=True)
@click.option("--validator", help="FILE.py:FUNCTION or MODULE:FUNCTION; returns None to keep "
              "an example, or the reason to reject it.")
@click.option("--benchmark", type=click.Path(path_type=Path),
              help="Benchmark JSONL whose prompts must not be generated.")
@click.option("--rejected", type=click.Path(path_type=Path),
              help="Rejected examples and reasons (default OUTPUT.rejected.jsonl).")
@click.option("--log", type=click.Path(path_type=Path),
              help="TRAINING_LOG.md to record the rejection rate in (default beside OUTPUT).")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
              help="Environment variable holding the API key.")
@click.option("--retries", type=int, default=2, show_default=True,
              help="Retries of a request after a network error, 429 or 5xx.")
@handle_errors
def data_synth(format_: str | None, **options) -> None:
    """Generate examples with a frontier model (guide Option B), in batches.

    Each answer must be a JSON example; duplicates, benchmark prompts and examples the
    validator rejects are kept aside with their reason, and the run's rejection rate is
    appended to TRAINING_LOG.md.

    \b
    Examples:
      locollm data synth --endpoint https://api.openai.com/v1 --model gpt-4o-mini \\
          --domain "arithmetic word problem" -n 100 \\
          -o adapters/math/training/synthetic.jsonl \\
          --validator adapters/math/training/validate.py:validate \\
          --benchmark adapters/math/eval/benchmark.jsonl
    """
    from .synth import SynthConfig, synthesize

    given = {k: v for k, v in options.items() if v is not None}
    if format_ is not None:
        given["format"] = format_
    cfg = SynthConfig(**given)

    def progress(batch: int, r) -> None:
        click.echo(f"batch {batch}: {r.accepted} accepted, {r.rejected} rejected so far",
                   err=True)

    r = synthesize(cfg, on_batch=progress)
    reasons = ", ".join(f"{k} {v}" for k, v in r.reasons.most_common()) or "none"
    click.echo(f"accepted {r.accepted} -> {cfg.output}; rejected {r.rejected} "
               f"({r.rejection_rate:.1%}: {reasons}) -> {cfg.rejected}; logged in {cfg.log}")


# ------------------------------------------------------------------------------------ train
def train_options(fn):
    """The guide's training flags, shared by `locollm train` and scripts/fine_tune.py."""
    options = [
        click.option("--domain", help="Adapter domain: reads adapters/DOMAIN/training/"
                     "dataset.jsonl and writes adapters/DOMAIN/."),
        click.option("--profile", help="Hardware profile: auto (pick for this machine), t4, "
                     "consumer-gpu, cpu, or a YAML file. Lowest layer above the defaults."),
        click.option("--config", "config_file", type=click.Path(path_type=Path),
                     help="YAML with TrainConfig keys (see configs/)."),
        click.option("--resume", is_flag=True, help="Continue an interrupted run from its "
                     "last checkpoint (same flags and data)."),
        click.option("--base-model", help="Embedded name, .gguf file, HF folder or hub id."),
        click.option("--dataset", help="Training JSONL."),
        click.option("--output", help="Adapter folder to write."),
        click.option("--lora-rank", type=int, help="LoRA rank (default 16)."),
        click.option("--lora-alpha", type=int, help="LoRA alpha (default 2 x rank)."),
        click.option("--lora-dropout", type=float, help="Dropout on the LoRA input (default 0)."),
        click.option("--epochs", type=float, help="Passes over the data (default 3)."),
        click.option("--max-steps", type=int, help="Stop after N optimizer steps."),
        click.option("--lr", type=float, help="Peak learning rate (default 2e-4)."),
        click.option("--batch-size", type=int, help="Examples per micro-batch."),
        click.option("--grad-accum", type=int, help="Micro-batches per optimizer step."),
        click.option("--max-seq-len", type=int, help="Longest example in tokens."),
        click.option("--eval-fraction", type=float,
                     help="Share of the data held out for eval loss (default 0.05, 0 = off)."),
        click.option("--eval-every", type=int, help="Eval loss every N steps (default 25)."),
        click.option("--save-every", type=int,
                     help="Checkpoint every N steps for --resume (default 50, 0 = off)."),
        click.option("--backend", type=click.Choice(["auto", "unsloth", "peft"]),
                     help="Training backend (auto: unsloth on CUDA, else peft)."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
                     help="auto: bf16 where supported, fp16 on a T4, fp32 on CPU."),
        click.option("--load-in-4bit/--no-load-in-4bit", default=None,
                     help="4-bit base (QLoRA; unsloth backend)."),
        click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=None,
                     help="Recompute activations to save memory (default: on with unsloth)."),
        click.option("--seed", type=int, help="Random seed."),
        click.option("--threads", type=int, help="CPU threads for torch."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def build_train_config(domain: str | None, config_file: Path | None, profile: str | None = None,
                       **flags):
    """defaults < profile < domain config < --config < explicit flags.

    Returns the config and, when a profile was given, what was picked and why.
    """
    from .config import TrainConfig, merge_config, read_yaml

    layers, sources, choice = [], [], None
    if profile:
        from .profiles import resolve_profile

        keys, choice, path = resolve_profile(profile)
        layers.append(keys)
        sources.append(str(path))
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
    return merge_config(TrainConfig, *layers, sources=sources), choice


def _resume_note(output: str, resume: bool) -> str | None:
    """What happens to a checkpoint left by an interrupted run."""
    from .train.checkpoint import read_state

    state = read_state(output) if output else None
    if resume:
        return f"resuming from the checkpoint at step {state['step']}" if state else \
            f"no checkpoint in {output}: starting from step 0"
    if state:
        return (f"note: {output} holds a checkpoint of an interrupted run (step "
                f"{state['step']}); starting over. Pass --resume to continue it instead.")
    return None


def _print_result(result) -> None:
    h, d = result.history, result.diagnosis
    click.echo(f"adapter written to {result.output} ({result.backend} on {result.device}, "
               f"{result.n_train} train / {result.n_eval} held-out examples, "
               f"{h.seconds:.0f}s, {h.tokens_per_second:.0f} tokens/s, "
               f"peak memory {h.peak_memory_mb:,.0f} MiB)")
    if d is not None:
        color = {"healthy": "green", "too short": None}.get(d.verdict, "yellow")
        click.echo(click.style(f"diagnosis: {d.verdict}", fg=color) + f": {d.reason}. "
                   f"{d.remedy}")
    click.echo(f"loss plot and log: {result.output / 'training' / 'loss.png'}, "
               f"{result.output / 'training' / 'TRAINING_LOG.md'}")


@cli.command()
@train_options
@handle_errors
def train(domain, config_file, profile, resume, **flags) -> None:
    """Train a LoRA adapter (unsloth on CUDA, transformers + PEFT elsewhere).

    Settings come from, lowest first: the defaults, --profile, configs/domains/DOMAIN.yaml,
    --config, and the flags. The exact config, metrics, a loss plot and a diagnosis of the
    curves land in the adapter's training/ folder. Ctrl-C (or a crash) keeps the last
    checkpoint: rerun the same command with --resume.

    \b
    Examples:
      locollm train --domain math
      locollm train --domain math --profile auto
      locollm train --dataset data.jsonl --output adapters/my-domain/ --lora-rank 16 \\
          --epochs 3 --lr 2e-4
      locollm train --domain math --resume
    """
    from .train import train as run_train
    from .train.checkpoint import read_state
    from .train.monitor import Progress

    cfg, choice = build_train_config(domain, config_file, profile, **flags)
    notes = {}
    if choice is not None:
        click.echo(f"profile {choice.name}: {choice.reason}", err=True)
        notes["Profile"] = f"{choice.name} ({choice.reason})"
    click.echo(f"training {cfg.output} on {cfg.dataset} (base {cfg.base_model})", err=True)
    note = _resume_note(cfg.output, resume)
    if note:
        click.echo(note, err=True)
    progress = Progress()
    try:
        result = run_train(cfg, on_step=progress, resume=resume, notes=notes)
    except KeyboardInterrupt:
        progress.close()
        state = read_state(cfg.output) if cfg.output else None
        if state:
            click.echo(f"the checkpoint at step {state['step']} is kept: rerun with --resume "
                       "to continue", err=True)
        raise
    finally:
        progress.close()
    _print_result(result)


# ----------------------------------------------------------------------------------- export
@cli.command()
@click.argument("adapter")
@click.option("--gguf/--no-gguf", default=True, help="Write the LoRA-only GGUF (default on).")
@click.option("--merged", is_flag=True, help="Also write a merged, quantized model GGUF.")
@click.option("--quant", type=click.Choice(["q4_k_m", "q5_k_m", "q8_0", "f16"]),
              default="q4_k_m", show_default=True, help="Quantization of the merged GGUF.")
@click.option("--merged-hf", type=click.Path(path_type=Path),
              help="Also write merged float32 safetensors to this folder.")
@click.option("--verify", is_flag=True, help="Check each export numerically.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Path of the LoRA GGUF (default ADAPTER/adapter.gguf).")
@handle_errors
def export(adapter: str, gguf: bool, merged: bool, quant: str, merged_hf: Path | None,
           verify: bool, output: Path | None) -> None:
    """Export ADAPTER (a folder or a domain under adapters/) for llama.cpp.

    The LoRA GGUF hot-swaps on the shared base; the merged GGUF is one self-contained
    quantized model. No llama.cpp clone or compiler is needed.

    \b
    Examples:
      locollm export math --gguf --verify
      locollm export math --merged --quant q4_k_m --verify
      locollm export adapters/math --no-gguf --merged-hf merged/
    """
    from .adapter import resolve_adapter
    from .export import (
        export_lora_gguf,
        export_merged,
        export_merged_hf,
        verify_export,
        verify_merged,
    )

    folder = resolve_adapter(adapter)
    if gguf:
        path = export_lora_gguf(folder, output)
        click.echo(f"LoRA GGUF written to {path} ({path.stat().st_size / 1e6:.1f} MB)")
        if verify:
            r = verify_export(folder)
            click.echo(f"verified LoRA GGUF: logit-change correlation {r.delta_correlation:.4f}"
                       f", top-1 agreement {r.top1_agreement:.3f} (base alone "
                       f"{r.base_top1_agreement:.3f}) over {r.n_positions} positions")
    if merged:
        path = export_merged(folder, quant=quant)
        click.echo(f"merged {quant.upper()} GGUF written to {path} "
                   f"({path.stat().st_size / 1e6:.1f} MB)")
        if verify:
            r = verify_merged(folder, path)
            click.echo(f"verified merged GGUF against base + LoRA: top-1 agreement "
                       f"{r.top1_agreement:.3f} (bare base {r.base_top1_agreement:.3f}), "
                       f"logit-change correlation {r.delta_correlation:.4f} over "
                       f"{r.n_positions} positions")
    if merged_hf:
        path = export_merged_hf(folder, merged_hf)
        click.echo(f"merged safetensors written to {path}")


# ------------------------------------------------------------------------------------ query
@cli.command()
@click.argument("text")
@click.option("--adapter", help="Adapter folder or domain under adapters/.")
@click.option("--no-adapter", is_flag=True, help="Use the bare base model (baseline testing).")
@click.option("--auto", is_flag=True, help="Pick the adapter with the keyword router "
              "(router_keywords in adapters/registry.yaml); no match uses the base.")
@click.option("--base-model", help="Base model (default: the adapter's, else gemma-3-270m).")
@click.option("--instruction", help="Use TEXT as the input of this instruction.")
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=0.0, show_default=True)
@click.option("--save-log", type=click.Path(path_type=Path),
              help="Append the query, answer and settings to this JSONL log.")
@handle_errors
def query(text, adapter, no_adapter, auto, base_model, instruction, max_tokens, temperature,
          save_log) -> None:
    """Ask the base model or an adapter one question.

    \b
    Examples:
      loco query "What is 47 + 35?" --no-adapter --save-log baseline_tests.jsonl
      loco query "Tom has 47 apples and gets 35 more. How many now?" --adapter math
      loco query "How many apples does Tom have if he adds 35 to 47?" --auto
    """
    from .errors import LocollmError
    from .runtime.query import append_log
    from .runtime.query import query as run_query

    if adapter and no_adapter:
        raise LocollmError("--adapter and --no-adapter exclude each other")
    if auto:
        from .runtime.router import route_text

        if adapter or no_adapter:
            raise LocollmError("--auto picks the adapter itself", fix="drop --adapter/--no-adapter")
        routed = route_text(text)
        adapter = routed.adapter
        click.echo(f"[route: {adapter or 'base'}, {routed.reason()}]", err=True)
    result = run_query(text, adapter=None if no_adapter else adapter, base_model=base_model,
                       instruction=instruction, max_tokens=max_tokens, temperature=temperature)
    click.echo(result.answer)
    c = result.completion
    click.echo(f"[{result.adapter or 'base'}: {c.completion_tokens} tokens in "
               f"{c.latency_s:.2f}s]", err=True)
    if save_log:
        append_log(save_log, result)


# ------------------------------------------------------------------------------------- eval
@cli.command("eval")
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
        from .evaluate import extract_answer

        for item in failures[:show_failures]:
            click.echo(f"  line {item.line}: expected {extract_answer(item.expected)!r}, got "
                       f"{extract_answer(item.response)!r}: {item.input[:60]!r}")


# --------------------------------------------------------------------------------- adapters
@cli.group()
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
    from .scaffold import new_adapter

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
    from .registry import register

    result = register(domain, registry, **fields)
    e = result.entry
    click.echo(f"{result.domain}: {e.benchmark_score:.1%} vs base {e.base_model_score:.1%} "
               f"({e.improvement}), {e.size_mb} MB -> {result.path}")
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
    from .registry import validate

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


# ------------------------------------------------------------------------- route, chat, serve
@cli.command()
@click.argument("text")
@click.option("--registry", type=click.Path(path_type=Path),
              help="Registry file (default adapters/registry.yaml).")
@click.option("--untrained", is_flag=True, help="Also consider entries whose folder has no "
              "trained adapter yet.")
@handle_errors
def route(text: str, registry: Path | None, untrained: bool) -> None:
    """Print the adapter the keyword router picks for TEXT ("base" if none), and why.

    \b
    Examples:
      loco route "Tom has 47 apples and gets 35 more. How many now?"
      loco route "Summarise this contract" --untrained
    """
    from .runtime.router import route_text

    routed = route_text(text, registry=registry, trained_only=not untrained)
    click.echo(routed.adapter or "base")
    click.echo(f"  {routed.reason()}", err=True)


@cli.command()
@click.option("--adapter", help="Adapter (folder or domain) to start with.")
@click.option("--auto", is_flag=True, help="Route every turn with the keyword router.")
@click.option("--base-model", help="Base model (default: the adapters', else gemma-3-270m).")
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=0.0, show_default=True)
@handle_errors
def chat(adapter, auto, base_model, max_tokens, temperature) -> None:
    """Chat with the base model and the trained adapters, switching between turns.

    Each line is one turn, formatted on its own (a base model has no chat history).
    Commands: /adapter NAME, /base, /auto, /adapters, /help, /quit.

    \b
    Examples:
      loco chat --adapter math
      loco chat --auto
      printf "What is 2 + 3?\\n/adapter math\\nWhat is 2 + 3?\\n" | loco chat
    """
    from .runtime.chat import open_chat

    session = open_chat(adapter, auto=auto, base_model=base_model, max_tokens=max_tokens,
                        temperature=temperature)
    try:
        _chat_loop(session)
    finally:
        session.runtime.close()


def _chat_loop(session) -> None:
    """Read lines until /quit or end of input; a bad command is reported, not fatal."""
    stdin = sys.stdin
    tty = stdin.isatty()
    if tty:
        click.echo(f"chat on {session.runtime.base_name}, adapters: "
                   f"{', '.join(session.runtime.metas) or 'none'} (/help for commands)", err=True)
    while True:
        line = input(f"{session.mode}> ") if tty else stdin.readline()
        if not tty and not line:
            return
        try:
            reply = session.handle(line, on_text=(lambda t: click.echo(t, nl=False)) if tty
                                   else None)
        except LocollmError as exc:
            click.secho(f"error: {exc.render()}", fg="red", err=True)
            continue
        if reply is None:
            continue
        if not (tty and reply.completion):
            click.echo(reply.text)
        elif not reply.completion.text.endswith("\n"):  # streamed: end the line
            click.echo()
        if reply.completion:
            c, why = reply.completion, f", {reply.route.reason()}" if reply.route else ""
            click.echo(f"[{c.adapter or 'base'}: {c.completion_tokens} tokens in "
                       f"{c.latency_s:.2f}s{why}]", err=True)
        if reply.quit:
            return


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on (keep the loopback unless you mean to share it).")
@click.option("--port", type=int, default=8000, show_default=True, help="Port (0: any free).")
@click.option("--adapters", "adapter_list", help="Comma-separated adapters (domains or "
              "folders) to load; \"\" for the base only. Default: every trained adapter.")
@click.option("--all", "all_adapters", is_flag=True,
              help="Load every trained adapter under adapters/ (the default).")
@click.option("--base-model", help="Base model (default: the adapters', else gemma-3-270m).")
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
@handle_errors
def serve(host, port, adapter_list, all_adapters, base_model, verbose) -> None:
    """Serve the base and adapters over an OpenAI-compatible HTTP API.

    The base loads once; each request's "model" picks an adapter by name, the base by its
    name, or "auto" for the keyword router. Endpoints: /v1/models, /v1/completions,
    /v1/chat/completions (stream supported), /lora-adapters, /health.

    \b
    Examples:
      locollm serve
      locollm serve --port 8080 --adapters math,adapters/code
      curl -s localhost:8000/v1/chat/completions -H 'Content-Type: application/json' \\
          -d '{"model": "auto", "messages": [{"role": "user", "content": "What is 47 + 35?"}]}'
    """
    from .runtime.server import make_server
    from .runtime.session import open_runtime

    if adapter_list is not None and all_adapters:
        raise LocollmError("--adapters and --all exclude each other")
    names = (None if adapter_list is None
             else [a.strip() for a in adapter_list.split(",") if a.strip()])
    runtime = open_runtime(names, base_model=base_model)
    try:
        server = make_server(runtime, host, port, verbose)
        ids = [runtime.base_name, *runtime.metas, "auto"]
        click.echo(f"serving {', '.join(ids)} at {server.url} (Ctrl-C stops)", err=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            click.secho(f"warning: listening on {host}: anyone who reaches it can use it",
                        fg="yellow", err=True)
        import signal

        signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops it cleanly too
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            click.echo("stopped", err=True)
        finally:
            server.server_close()
    finally:
        runtime.close()


# ----------------------------------------------------------------------------------- doctor
@cli.command()
@click.option("--model", help="GGUF or embedded name to test-decode (default gemma-3-270m).")
@click.option("--quick", is_flag=True, help="Only the decode check, one line (make setup/demo).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def doctor(model: str | None, quick: bool, as_json: bool) -> None:
    """Check that llama.cpp runs here, and print what a bug report needs.

    One tiny real decode of the embedded model runs in a child process, so a native crash
    (an AMX or AVX-512 path this CPU faults on) is reported with its cause and the command
    that rebuilds llama-cpp-python safely, instead of killing your run. Also reports torch,
    CUDA/MPS, llama.cpp's build flags, threads and the model cache. Exit status 1 when the
    decode check fails.

    \b
    Examples:
      locollm doctor
      locollm doctor --quick
      locollm doctor --json > doctor.json
    """
    from .doctor import build_report, diagnose, run_probe

    if quick:
        probe = run_probe(model)
        if not probe.ok:
            click.secho(f"doctor: {diagnose(probe)}", fg="red", err=True)
            sys.exit(1)
        click.echo(f"doctor: llama.cpp decodes on this machine ({probe.model}: "
                   f"{probe.text!r}, {probe.seconds:.1f}s)")
        return
    report = build_report(model)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for name, rows in report.sections:
            click.secho(name, bold=True)
            for key, value in rows:
                click.echo(f"  {key:<18} {value}")
        probe = report.probe
        if probe is not None and probe.ok:
            rate = f", {probe.tokens_per_second:.0f} tokens/s" if probe.tokens_per_second else ""
            click.secho(f"decode check: ok ({probe.text!r} in {probe.seconds:.1f}s{rate})",
                        fg="green")
    if not report.ok:
        click.secho(f"decode check: FAILED\n{diagnose(report.probe)}", fg="red", err=True)
        sys.exit(1)
