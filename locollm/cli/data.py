"""``locollm data``: check, convert, split and synthesize training data (the guide's Phase 2)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .common import handle_errors


@click.group()
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
    from ..data.check import check_dataset, render

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
    from ..data.convert import convert

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
    from ..data.split import split_dataset

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
    from ..data.synth import SynthConfig, synthesize

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


@data.command("replay")
@click.argument("prompts", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Instruction/input/output JSONL to write.")
@click.option("--base", "base_model", help="Base model to answer with (default: the embedded "
              "Gemma 3 270M).")
@click.option("--max-tokens", type=int, default=96, show_default=True,
              help="Longest answer.")
@click.option("--keep-echoes", is_flag=True, help="Keep answers that only restate the "
              "question (\"India is the capital of India.\"); left out by default.")
@handle_errors
def data_replay(prompts: Path, output: Path, base_model: str | None, max_tokens: int,
                keep_echoes: bool) -> None:
    """Answer PROMPTS with the base model itself: replay data to mix into a training set.

    PROMPTS is JSONL with an "instruction" (and optional "input") per line. Each is answered
    greedily by llama.cpp in the prompt format training and eval use, so mixing the result
    into an adapter's data teaches it to leave those prompts as the base answers them. An
    answer that only restates the question is a failure, not knowledge, and is left out
    (--keep-echoes keeps it).

    \b
    Examples:
      locollm data replay adapters/math/training/replay_prompts.jsonl \\
          -o adapters/math/training/replay.jsonl
    """
    from ..data.replay import replay_answers

    r = replay_answers(prompts, output, base_model=base_model, max_tokens=max_tokens,
                       keep_echoes=keep_echoes)
    left_out = [f"{n} {what}" for n, what in ((r.skipped_empty, "empty"),
                                              (r.skipped_echo, "echoing the question")) if n]
    click.echo(f"wrote {r.written} replay examples to {r.output}"
               + (f" (left out: {', '.join(left_out)})" if left_out else "")
               + (f"; {r.truncated} cut at --max-tokens" if r.truncated else ""))
