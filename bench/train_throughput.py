"""Training throughput: locollm's peft backend against a naive transformers Trainer run.

Both runs train the same fresh LoRA (same rank, targets, learning rate, batch size, float32,
same threads) on the same tokenized data, in this process, one after the other:

* **naive**: ``transformers.Trainer`` with ``DataCollatorForSeq2Seq`` (batches in random order,
  padded to their longest row) and the model's own loss (logits at every position);
* **locollm**: :func:`locollm.train.peft_backend.run` (length-grouped batches, the output layer
  only at answer positions, a batch's shared prompt prefix computed once); and the same
  without prefix sharing, to show what each saving buys.

tokens/s counts non-padding tokens (prompt + answer), so padding is a cost, not a credit.
Peak memory is the process's resident memory sampled during the run. The first step of each
run is a warm-up and is not timed.

On a CUDA machine with the gpu extra, ``--gpu`` then runs bench/gpu_check.py with the same
base, steps and batch size: the Unsloth path, locollm's peft loop on the GPU and plain HF +
PEFT QLoRA (bitsandbytes 4-bit, gradient checkpointing), each in a child process so Unsloth's
patches cannot touch the plain run: tokens/s and peak VRAM (bench/gpu_check.sh wraps it with
the installation, for a fresh GPU machine).

Usage: .venv/bin/python bench/train_throughput.py [--steps 3] [--batch-size 8] [--tiny]
       .venv/bin/python bench/train_throughput.py --gpu --steps 30 --base-model \
           Qwen/Qwen2.5-3B-Instruct
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "adapters" / "math" / "training" / "dataset.jsonl"


@dataclass
class Run:
    """One measured configuration."""

    name: str
    tokens_per_s: float
    s_per_step: float
    padding: float  # share of the processed tokens that were padding
    peak_mb: float  # resident memory at its peak
    train_mb: float  # the peak above what the process held with the model loaded


def release_memory() -> None:
    """Collect garbage and hand freed heap back to the OS, so the next run's resident memory
    starts from what it really holds (glibc keeps freed memory otherwise)."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakMemory:
    """Samples resident memory in a thread; ``peak`` and ``start`` in MiB (``start``: at
    entry, with the model already loaded). GPU memory is bench/gpu_check.py's."""

    def __init__(self) -> None:
        self.peak, self.start, self._stop = 0.0, 0.0, threading.Event()

    @staticmethod
    def rss_mb() -> float:
        try:
            with open("/proc/self/statm", encoding="ascii") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except OSError:  # not Linux: the process's peak so far
            from locollm.train.monitor import peak_rss_mb

            return peak_rss_mb()

    def __enter__(self) -> PeakMemory:
        release_memory()
        self.start = self.peak = self.rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.rss_mb())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def resident(model):
    """Touch every weight, so pages of the memory-mapped checkpoint count as the model's
    memory, not as the first training step's."""
    import torch

    with torch.no_grad():
        for param in model.parameters():
            param.sum()
    return model


def load_items(model_dir: Path, limit: int | None):
    from transformers import AutoTokenizer

    from locollm.data.jsonl import load_examples
    from locollm.prompt import format_for_tokenizer
    from locollm.train.tokens import tokenize_examples

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    examples = load_examples(DATA)[:limit]
    return tokenizer, tokenize_examples(examples, tokenizer, 1024,
                                        fmt=format_for_tokenizer(tokenizer))


def naive_run(model_dir: Path, tokenizer, items, cfg, steps: int) -> Run:
    """transformers.Trainer on the same LoRA model: random padded batches, full logits."""
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    from locollm.train import peft_backend

    model = resident(peft_backend.load_model(model_dir, cfg, "cpu"))
    rows = [{"input_ids": e.input_ids,
             "labels": [-100] * e.answer_start + e.input_ids[e.answer_start:]} for e in items]
    pad = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    seen: list[tuple[int, int]] = []  # (real tokens, all tokens) of each batch

    def collate(batch):
        out = pad(batch)
        seen.append((int(out["attention_mask"].sum()), out["attention_mask"].numel()))
        return out

    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            times.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=cfg.batch_size,
                                 max_steps=steps + 1, learning_rate=cfg.lr, report_to=[],
                                 save_strategy="no", logging_strategy="no", use_cpu=True,
                                 disable_tqdm=True, dataloader_num_workers=0, seed=cfg.seed,
                                 remove_unused_columns=False)
        trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collate,
                          callbacks=[Clock()])
        with PeakMemory() as mem:
            trainer.train()
    timed = [times[2 * i + 1] - times[2 * i] for i in range(1, steps + 1)]
    real = sum(r for r, _ in seen[1:steps + 1])
    total = sum(t for _, t in seen[1:steps + 1])
    return Run("naive HF Trainer (full logits, padded)", real / sum(timed),
               sum(timed) / steps, 1 - real / total, mem.peak, mem.peak - mem.start)


def locollm_run(model_dir: Path, tokenizer, items, cfg, steps: int, share: bool) -> Run:
    """locollm's peft backend loop on the same data."""
    from locollm.train import loss, peft_backend
    from locollm.train.tokens import IGNORE

    assert IGNORE == -100
    model = resident(peft_backend.load_model(model_dir, cfg, "cpu"))
    records: list[dict] = []
    saved = loss.MIN_SHARED
    loss.MIN_SHARED = saved if share else 10**9  # the ablation: never share a prefix
    try:
        with PeakMemory() as mem:
            run_cfg = type(cfg)(**(cfg.to_dict() | {"max_steps": steps + 1, "save_every": 0}))
            peft_backend.run(model, items, [], run_cfg, tokenizer.pad_token_id or 0, "cpu",
                             on_step=records.append)
    finally:
        loss.MIN_SHARED = saved
    elapsed = records[-1]["elapsed"] - records[0]["elapsed"]
    tokens = sum(r["tokens"] for r in records[1:])
    name = "locollm peft backend" if share else "  locollm without shared prefix"
    return Run(name, tokens / elapsed, elapsed / steps, _padding(items, cfg, steps), mem.peak,
               mem.peak - mem.start)


def _padding(items, cfg, steps: int) -> float:
    """Padding share of the batches the loop timed: it draws them from the end of the first
    epoch's length-grouped order, seeded like this."""
    import random

    from locollm.train.tokens import length_grouped_batches

    order = length_grouped_batches(items, cfg.batch_size, random.Random(cfg.seed))[::-1]
    timed = order[1:steps + 1]
    real = sum(len(items[i].input_ids) for b in timed for i in b)
    return 1 - real / sum(max(len(items[i].input_ids) for i in b) * len(b) for b in timed)


def cpu_bench(args) -> None:
    import torch

    from locollm.config import TrainConfig
    from locollm.models import resolve, training_dir
    from locollm.train.peft_backend import cpu_threads

    model_dir = tiny_model() if args.tiny else training_dir(resolve(args.base_model))
    tokenizer, items = load_items(model_dir, args.limit)
    threads = cpu_threads(args.threads)
    torch.set_num_threads(threads)
    cfg = TrainConfig(base_model=str(model_dir), lora_rank=16, batch_size=args.batch_size,
                      lr=2e-4, seed=0, threads=threads)
    lengths = [len(e.input_ids) for e in items]
    print(f"model {args.base_model if not args.tiny else 'tiny'}, {len(items)} examples "
          f"({min(lengths)}-{max(lengths)} tokens), batch {args.batch_size}, LoRA r16 on "
          f"{len(cfg.target_modules)} projections, {args.steps} timed steps (+1 warm-up), "
          f"{threads} thread(s)", flush=True)
    runs = []
    for _ in range(args.rounds):
        runs.append(naive_run(model_dir, tokenizer, items, cfg, args.steps))
        runs.append(locollm_run(model_dir, tokenizer, items, cfg, args.steps, share=True))
        if not args.no_ablation:
            runs.append(locollm_run(model_dir, tokenizer, items, cfg, args.steps, share=False))
    print(f"{'run':<40} {'tokens/s':>9} {'s/step':>7} {'padding':>8} {'peak RSS':>9} "
          f"{'for training':>13}")
    for r in runs:
        print(f"{r.name:<40} {r.tokens_per_s:>9.1f} {r.s_per_step:>7.2f} {r.padding:>8.1%} "
              f"{r.peak_mb:>5.0f} MiB {r.train_mb:>9.0f} MiB")
    naive = [r for r in runs if r.name.startswith("naive")]
    fast = [r for r in runs if r.name == "locollm peft backend"]
    speed = sum(f.tokens_per_s for f in fast) / sum(n.tokens_per_s for n in naive)
    peak = max(f.peak_mb for f in fast) / max(n.peak_mb for n in naive)
    train = max(f.train_mb for f in fast) / max(n.train_mb for n in naive)
    print(f"ratio locollm / naive: {speed:.2f}x tokens/s (goal >= 2x), {peak:.2f}x peak RSS, "
          f"{train:.2f}x memory for training")


def tiny_model() -> Path:
    """The tests' tiny Gemma-3, built in a temp folder (a smoke run in seconds)."""
    sys.path.insert(0, str(REPO / "tests"))
    from tiny import build_tiny_model

    return build_tiny_model(Path(tempfile.mkdtemp()) / "tiny")


def gpu_bench(args) -> int:
    """The GPU comparison is bench/gpu_check.py's (Unsloth, locollm's peft loop on the GPU and
    plain HF + PEFT QLoRA, each in its own process): one measurement, two entry points."""
    sys.path.insert(0, str(Path(__file__).parent))
    import gpu_check

    return gpu_check.main(["--base-model", args.base_model, "--steps", str(args.steps),
                           "--batch-size", str(args.batch_size), "--require-gpu"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-model", default="gemma-3-270m")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny model (seconds)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the runs, interleaved")
    parser.add_argument("--limit", type=int, help="use only the first N examples")
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--no-ablation", action="store_true",
                        help="skip the run without prefix sharing")
    parser.add_argument("--gpu", action="store_true",
                        help="then run bench/gpu_check.py: Unsloth vs HF + PEFT QLoRA (CUDA + "
                             "gpu extra)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cpu_bench(args)
    if args.gpu:
        sys.exit(gpu_bench(args))


if __name__ == "__main__":
    main()
