"""GPU check: the real unsloth backend against plain transformers + PEFT on the same GPU.

Three runs train the same LoRA (rank 16 on the attention and MLP projections) on the same
data for the same steps, each in its own process so Unsloth's patches cannot reach the others:

* **unsloth**: ``locollm train --backend unsloth`` (4-bit base, Unsloth's kernels and
  checkpointing, trl's SFTTrainer): the path the t4 profile takes;
* **locollm-peft**: ``locollm train --backend peft`` on the GPU (half precision, locollm's own
  loop);
* **hf-qlora**: the baseline, plain transformers ``Trainer`` + PEFT QLoRA (bitsandbytes nf4,
  gradient checkpointing, paged 8-bit AdamW), no Unsloth.

tokens/s counts non-padding tokens of the timed steps (the first step is a warm-up); peak VRAM
is ``torch.cuda.max_memory_allocated``. The unsloth adapter is then exported to a LoRA GGUF
(and verified against PEFT when llama-cpp-python is installed). Ratios are against hf-qlora,
measured in the same run. Without a CUDA GPU this prints "no GPU" and exits 0.

The weights are the embedded Gemma 3 270M's dequantized Hugging Face folder, which locollm
builds from the GGUF it ships (no download). ``bench/gpu_check.sh`` installs what is missing
and runs this under 8 minutes.

Usage: python bench/gpu_check.py [--steps 30] [--batch-size 8] [--out DIR] [--json FILE]
       python bench/gpu_check.py download DIR [--python 3.12] [--torch 2.11.0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "adapters" / "math" / "training" / "dataset.jsonl"
KINDS = ("hf-qlora", "locollm-peft", "unsloth")  # the baseline first
GOALS = "goal: unsloth >= 1.8x tokens/s and <= 0.6x peak VRAM of hf-qlora"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-model", default="gemma-3-270m",
                        help="embedded name, HF folder or hub id (default: the embedded 270M)")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-seq-len", type=int, default=512)
    parser.add_argument("--out", type=Path, help="where the adapters go (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--timeout", type=int, default=420,
                        help="seconds each run may take before it is stopped")
    parser.add_argument("--require-gpu", action="store_true",
                        help="exit 1 instead of 0 when there is no CUDA GPU")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the first step is a warm-up)")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args


def cuda_status() -> tuple[bool, str]:
    """(usable, what was found): a CUDA device torch can use, or why not."""
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if not torch.cuda.is_available():
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else " (CPU build)")
        return False, f"{build} sees no CUDA device"
    return True, f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"


def model_folder(base_model: str) -> Path:
    """The base's Hugging Face folder (the embedded GGUF, dequantized once and cached)."""
    from locollm.models import resolve, training_dir

    return training_dir(resolve(base_model))


def _config(args, kind: str, out: Path):
    from locollm.config import TrainConfig

    return TrainConfig(base_model=str(model_folder(args.base_model)), dataset=str(DATA),
                       output=str(out / kind), backend=kind.removeprefix("locollm-"),
                       max_steps=args.steps, batch_size=args.batch_size, lora_rank=16,
                       max_seq_len=args.max_seq_len, eval_fraction=0, save_every=0, seed=0)


def locollm_run(args, kind: str, out: Path) -> dict:
    """``locollm train`` with the unsloth or the peft backend; timed from its step records."""
    if kind == "unsloth":
        import unsloth  # noqa: F401  (before transformers, as Unsloth asks)
    from locollm.train import train

    records: list[dict] = []
    result = train(_config(args, kind, out), on_step=records.append)
    timed = records[1:]
    elapsed = timed[-1]["elapsed"] - records[0]["elapsed"]
    return {"tokens_per_s": sum(r["tokens"] for r in timed) / elapsed,
            "peak_vram_mb": result.history.peak_memory_mb,
            "final_loss": records[-1]["loss"], "adapter": str(result.output)}


def hf_qlora_run(args, out: Path) -> dict:
    """Plain HF + PEFT QLoRA: bitsandbytes nf4 base, gradient checkpointing, Trainer."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        BitsAndBytesConfig,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from locollm.config import DEFAULT_TARGETS
    from locollm.data.jsonl import load_examples
    from locollm.prompt import format_for_tokenizer
    from locollm.train.tokens import tokenize_examples

    folder = model_folder(args.base_model)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    items = tokenize_examples(load_examples(DATA), tokenizer, args.max_seq_len,
                              fmt=format_for_tokenizer(tokenizer))
    half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                               bnb_4bit_compute_dtype=half)
    model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quant,
                                                 device_map={"": 0})
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM",
                                             target_modules=list(DEFAULT_TARGETS)))
    rows = [{"input_ids": e.input_ids,
             "labels": [-100] * e.answer_start + e.input_ids[e.answer_start:]} for e in items]
    pad = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    seen: list[int] = []
    times: list[float] = []

    def collate(batch):
        batch = pad(batch)
        seen.append(int(batch["attention_mask"].sum()))
        return batch

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            times.append(time.perf_counter())

        def on_step_end(self, *a, **k):
            torch.cuda.synchronize()
            times.append(time.perf_counter())

    targs = TrainingArguments(output_dir=str(out / "hf-qlora"), max_steps=args.steps,
                              per_device_train_batch_size=args.batch_size, learning_rate=2e-4,
                              report_to=[], save_strategy="no", logging_strategy="no",
                              disable_tqdm=True, fp16=half == torch.float16,
                              bf16=half == torch.bfloat16, optim="paged_adamw_8bit",
                              remove_unused_columns=False, dataloader_num_workers=0)
    torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(model=model, args=targs, train_dataset=rows, data_collator=collate,
                      callbacks=[Clock()])
    trainer.train()
    timed = sum(times[2 * i + 1] - times[2 * i] for i in range(1, args.steps))
    return {"tokens_per_s": sum(seen[1:args.steps]) / timed,
            "peak_vram_mb": torch.cuda.max_memory_allocated() / 2**20}


def child(args) -> None:
    """One run, in this (child) process; prints its numbers as the last line of JSON."""
    out = args.out or Path(tempfile.mkdtemp())
    numbers = hf_qlora_run(args, out) if args.child == "hf-qlora" else \
        locollm_run(args, args.child, out)
    print(json.dumps(numbers))


def run_child(args, kind: str, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--base-model", args.base_model,
           "--steps", str(args.steps), "--batch-size", str(args.batch_size),
           "--max-seq-len", str(args.max_seq_len), "--out", str(out)]
    began = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {args.timeout} s"}
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                else f"exit {done.returncode}", "log": done.stderr[-3000:]}
    return {**json.loads(done.stdout.strip().splitlines()[-1]),
            "wall_s": round(time.perf_counter() - began, 1)}


def export_check(adapter: Path) -> dict:
    """LoRA GGUF of the unsloth adapter; verified against PEFT when llama.cpp is installed."""
    import importlib.util

    from locollm.export.lora import export_lora_gguf

    began = time.perf_counter()
    path = export_lora_gguf(adapter)
    found = {"lora_gguf": str(path), "mb": round(path.stat().st_size / 1e6, 2),
             "export_s": round(time.perf_counter() - began, 2)}
    if importlib.util.find_spec("llama_cpp") is None:
        return {**found, "verify": "skipped (llama-cpp-python not installed)"}
    from locollm.export.verify import verify_export

    report = verify_export(adapter)
    return {**found, "delta_correlation": round(report.delta_correlation, 4),
            "top1_agreement": round(report.top1_agreement, 3)}


def report(results: dict, device: str) -> list[str]:
    """The table and the ratios against hf-qlora, as printed."""
    lines = [f"GPU check on {device}",
             f"{'run':<14} {'tokens/s':>10} {'peak VRAM':>12} {'wall':>7}"]
    for kind in KINDS:
        r = results[kind]
        if "error" in r:
            lines.append(f"{kind:<14} failed: {r['error']}")
        else:
            lines.append(f"{kind:<14} {r['tokens_per_s']:>10.0f} {r['peak_vram_mb']:>8.0f} MiB "
                         f"{r['wall_s']:>6.0f}s")
    base = results["hf-qlora"]
    for kind in KINDS[1:]:
        r = results[kind]
        if "error" not in r and "error" not in base:
            speed = r["tokens_per_s"] / base["tokens_per_s"]
            memory = r["peak_vram_mb"] / base["peak_vram_mb"]
            lines.append(f"ratio {kind} / hf-qlora: {speed:.2f}x tokens/s, "
                         f"{memory:.2f}x peak VRAM")
    lines.append(GOALS)
    return lines


def download(argv: list[str]) -> int:
    """Fetch the wheels a GPU machine without a registry needs (run where pip works)."""
    parser = argparse.ArgumentParser(prog="gpu_check.py download")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--python", default="3.12", help="the GPU machine's Python (X.Y)")
    parser.add_argument("--torch", default="2.11.0", help="the torch installed there (kept)")
    parser.add_argument("--triton", default="3.6.0", help="the triton that torch pins")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "colab"))
    from check_gpu_pins import PLATFORMS, requirements, standin_torch

    args.dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = standin_torch(Path(tmp), args.torch, args.triton)
        keep = Path(tmp) / "keep.txt"
        keep.write_text(f"torch=={args.torch}\n", encoding="utf-8")
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
               "--python-version", args.python, "--find-links", tmp, "-c", str(keep),
               "-d", str(args.dest), *[f"--platform={p}" for p in PLATFORMS],
               *requirements(REPO / "pyproject.toml", "gpu")]
        done = subprocess.run(cmd)
        (args.dest / wheel.name).unlink(missing_ok=True)  # the machine has its own torch
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["download"]:
        return download(argv[1:])
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.child:
        child(args)
        return 0
    usable, device = cuda_status()
    if not usable:
        print(f"no GPU: {device}; nothing to check")
        return 1 if args.require_gpu else 0
    out = args.out or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    print(f"building the {args.base_model} training folder ...", flush=True)
    model_folder(args.base_model)  # once, before the timed children
    results = {}
    for kind in KINDS:
        print(f"{kind}: {args.steps} steps ...", flush=True)
        results[kind] = run_child(args, kind, out)
    if "error" not in results["unsloth"]:
        results["export"] = export_check(Path(results["unsloth"]["adapter"]))
    print("\n".join(report(results, device)))
    if "export" in results:
        print(f"export: {json.dumps(results['export'])}")
    if args.json:
        args.json.write_text(json.dumps({"device": device, **results}, indent=1) + "\n")
    failed = [k for k in KINDS if "error" in results[k]]
    for kind in failed:
        print(f"--- {kind} log ---\n{results[kind].get('log', '')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
