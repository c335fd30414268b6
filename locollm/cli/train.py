"""``locollm train`` (and ``scripts/fine_tune.py``): the training flags, progress and result."""

from __future__ import annotations

from pathlib import Path

import click

from .common import handle_errors


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


def _resume_note(output: str, resume: bool) -> str | None:
    """What happens to a checkpoint left by an interrupted run."""
    from ..train.checkpoint import read_state

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


@click.command()
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
      torchrun --nproc_per_node 4 -m locollm train --domain math   (data-parallel)
    """
    from ..train import train as run_train
    from ..train.checkpoint import read_state
    from ..train.distributed import is_main_process
    from ..train.monitor import Progress
    from ..train.settings import build_train_config

    cfg, choice = build_train_config(domain, config_file, profile, **flags)
    # under torchrun / accelerate launch, rank 0 speaks for the whole group
    main = is_main_process()
    say = click.echo if main else (lambda *a, **k: None)
    notes = {}
    if choice is not None:
        say(f"profile {choice.name}: {choice.reason}", err=True)
        notes["Profile"] = f"{choice.name} ({choice.reason})"
    say(f"training {cfg.output} on {cfg.dataset} (base {cfg.base_model})", err=True)
    note = _resume_note(cfg.output, resume)
    if note:
        say(note, err=True)
    progress = Progress()
    try:
        result = run_train(cfg, on_step=progress, resume=resume, notes=notes)
    except KeyboardInterrupt:
        progress.close()
        state = read_state(cfg.output) if cfg.output else None
        if state:
            say(f"the checkpoint at step {state['step']} is kept: rerun with --resume "
                "to continue", err=True)
        raise
    finally:
        progress.close()
    if result.main:
        _print_result(result)
