"""The unsloth backend: QLoRA on a CUDA GPU with Unsloth's kernels and trl's SFTTrainer.

It follows Unsloth's documented recipe: ``FastLanguageModel.from_pretrained(load_in_4bit=...)``
loads the base in 4 bit, ``FastLanguageModel.get_peft_model(use_gradient_checkpointing=
"unsloth")`` adds the LoRA layers with Unsloth's offloaded checkpointing, trl's ``SFTTrainer``
trains, and ``unsloth.chat_templates.train_on_responses_only`` masks everything but the answers
out of the loss. This module is imported only on that branch, so a CPU machine never imports
Unsloth.

The training text of every example is built by :mod:`locollm.prompt`, the same function eval
and serving use; the held-out split, the step records, the history and the adapter folder are
the peft backend's, so nothing downstream can tell which backend trained an adapter.

Several GPUs: under ``torchrun``/``accelerate launch`` the Trainer runs DDP itself, and current
Unsloth supports that launch: ``FastLanguageModel.from_pretrained`` pins each rank's copy to
its ``LOCAL_RANK`` GPU and Unsloth sets DDP's defaults for a LoRA model under checkpointing.
Each rank holds the whole (4-bit) model; Unsloth's FSDP2 sharding (``UNSLOTH_FSDP2=1``) is not
used here. Rank 0 alone reports steps and writes checkpoint state.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import time
from pathlib import Path

from ..data.jsonl import Example
from ..paths import atomic_write
from ..prompt import PromptFormat, format_completion, format_prompt
from . import checkpoint
from .distributed import DistContext
from .monitor import History, peak_rss_mb, step_record

HF_CHECKPOINTS = "hf"  # Trainer checkpoints live in <output>/.checkpoint/hf/checkpoint-N


def preload() -> None:
    """Import Unsloth before transformers and trl, as Unsloth asks, so its patches apply."""
    import unsloth  # noqa: F401


def training_texts(examples: list[Example], fmt: PromptFormat, eos_token: str) -> list[str]:
    """Prompt + answer for each example, formatted exactly as eval and serving prompt.

    The plain format ends the answer with the EOS token; a chat format with its end-of-turn
    marker (what :func:`format_completion` appends).
    """
    tail = "" if fmt.chat and fmt.chat.end else eos_token
    return [format_prompt(e.instruction, e.input, fmt) + format_completion(e.output, fmt) + tail
            for e in examples]


def _dtype(precision: str):
    import torch

    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}.get(precision)


def load_model(prep):
    """Base model (4-bit when ``load_in_4bit``) and tokenizer, with LoRA layers added."""
    from unsloth import FastLanguageModel

    from .peft_backend import resolve_precision

    cfg = prep.cfg
    precision = resolve_precision(cfg.precision, "cuda")
    # Current Unsloth takes the checkpointing mode and the seed in from_pretrained too (its
    # defaults there: "unsloth" and 3407); both calls get ours so neither default leaks in.
    checkpointing = False if cfg.gradient_checkpointing is False else "unsloth"
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=str(prep.model_dir), max_seq_length=cfg.max_seq_len,
        dtype=_dtype(precision) if cfg.precision != "auto" else None,
        load_in_4bit=cfg.load_in_4bit, use_gradient_checkpointing=checkpointing,
        random_state=cfg.seed)
    model = FastLanguageModel.get_peft_model(
        model, r=cfg.lora_rank, lora_alpha=cfg.alpha, lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules), bias="none",
        use_gradient_checkpointing=checkpointing, random_state=cfg.seed,
        max_seq_length=cfg.max_seq_len)
    return model, tokenizer, precision


def sft_config(cfg, precision: str, output: Path, n_train: int, has_eval: bool,
               world: int = 1):
    """trl's SFTConfig for ``cfg``: the same steps, schedule, batch and precision as the peft
    backend (the step count is computed here, not left to the Trainer, so both agree; with
    ``world`` data-parallel processes a step covers ``world`` times the batches)."""
    from trl import SFTConfig

    from .peft_backend import total_steps

    steps = total_steps(cfg, n_train, world)
    extra = {}
    if cfg.gradient_checkpointing is False:  # trl turns it on by default
        names = {f.name for f in dataclasses.fields(SFTConfig)}
        extra["activation_checkpointing" if "activation_checkpointing" in names
              else "gradient_checkpointing"] = False
    # adamw_8bit (bitsandbytes, part of the gpu extra) is what Unsloth's recipes use
    optim = "adamw_8bit" if importlib.util.find_spec("bitsandbytes") else "adamw_torch"
    return SFTConfig(
        output_dir=str(output / checkpoint.CHECKPOINT / HF_CHECKPOINTS),
        dataset_text_field="text", max_length=cfg.max_seq_len, packing=False,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, max_steps=steps, learning_rate=cfg.lr,
        warmup_steps=max(1, int(steps * cfg.warmup_ratio)), lr_scheduler_type="linear",
        weight_decay=cfg.weight_decay, max_grad_norm=1.0,
        optim=optim, fp16=precision == "fp16", bf16=precision == "bf16", seed=cfg.seed,
        logging_steps=1, disable_tqdm=True, eval_strategy="steps" if has_eval else "no",
        eval_steps=cfg.eval_every, save_strategy="steps" if cfg.save_every else "no",
        save_steps=cfg.save_every or 500, save_total_limit=1, report_to="none",
        dataset_num_proc=1, **extra)


def _callback(prep, on_step):
    """A TrainerCallback that turns the Trainer's logs into step records and a History."""
    from transformers import TrainerCallback

    output = Path(prep.cfg.output)
    label_share = sum(i.n_answer for i in prep.train_items) / \
        max(1, sum(len(i.input_ids) for i in prep.train_items))

    class Monitor(TrainerCallback):
        def __init__(self) -> None:
            self.history = History()
            self.start_step = 0
            self.seen_tokens = 0.0
            self.pending: dict | None = None
            self.t0 = time.perf_counter()

        def on_train_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()
            self.history.steps = state.max_steps
            self.start_step = state.global_step
            if state.global_step:  # resumed: rebuild the curves from the restored log
                self.history.resumed_at.append(state.global_step)
                for log in state.log_history:
                    self._collect(log)
                self.history.eval_seconds = 0.0  # seconds count this session only

        def _collect(self, log: dict) -> dict | None:
            step = log.get("step")
            if "eval_loss" in log:
                self.history.eval.append({"step": step, "loss": log["eval_loss"]})
                self.history.eval_seconds += log.get("eval_runtime", 0.0)
                return None
            if "loss" not in log:
                return None
            tokens = max(0, int(log.get("num_tokens", 0) - self.seen_tokens))
            self.seen_tokens = log.get("num_tokens", self.seen_tokens)
            self.history.train.append({"step": step, "loss": log["loss"],
                                       "lr": log.get("learning_rate", 0.0), "tokens": tokens})
            self.history.total_tokens += tokens
            self.history.answer_tokens += int(tokens * label_share)  # estimated from the data
            return self.history.train[-1]

        def on_log(self, args, state, control, logs=None, **kwargs):
            # The Trainer logs a step's eval loss after its training loss, so a step's record
            # is held until the next log (or the end of training) and then sent complete.
            logs = dict(logs or {}, step=state.global_step)
            row = self._collect(logs)
            self.history.seconds = time.perf_counter() - self.t0
            if row is not None:
                self._emit()
                self.pending = step_record(row["step"], state.max_steps, row["loss"], row["lr"],
                                           row["tokens"], self.history.seconds, self.start_step,
                                           self.history.eval_seconds)
            elif "eval_loss" in logs and self.pending is not None:
                self.pending["eval_loss"] = logs["eval_loss"]
            if state.global_step >= state.max_steps and "eval_loss" in logs:
                self._emit()

        def _emit(self) -> None:
            # on_step is None on the other ranks of a data-parallel run (rank 0 reports)
            if self.pending is not None and on_step:
                on_step(self.pending)
            self.pending = None

        def on_train_end(self, args, state, control, **kwargs):
            self._emit()

        def on_save(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:  # the Trainer saves on rank 0 too
                return
            atomic_write(output / checkpoint.CHECKPOINT / checkpoint.STATE, json.dumps(
                {"backend": "unsloth", "step": state.global_step,
                 "fingerprint": prep.fingerprint}))

    return Monitor()


def _resume_path(output: Path) -> str | None:
    folder = output / checkpoint.CHECKPOINT / HF_CHECKPOINTS
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(found[-1]) if found else None


def _mask_prompts(trainer, tokenizer, fmt: PromptFormat):
    """Loss on the answers only, with Unsloth's documented helper.

    Recent Unsloth versions read the parts from a tokenizer whose chat template they know and
    refuse explicit ones then; otherwise the markers come from our prompt format.
    """
    from unsloth.chat_templates import train_on_responses_only

    if fmt.chat and hasattr(tokenizer, "_unsloth_output_part"):
        return train_on_responses_only(trainer)
    return train_on_responses_only(trainer, instruction_part=fmt.instruction_marker,
                                   response_part=fmt.response_marker)


def train(prep, on_step=None, resume: bool = False, ctx: DistContext | None = None):
    """Train with Unsloth; return ``(model, history, device)`` like the peft backend."""
    preload()
    import torch
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    output = Path(prep.cfg.output)
    model, tokenizer, precision = load_model(prep)
    eos = tokenizer.eos_token or ""
    train_set = Dataset.from_dict({"text": training_texts(prep.train_examples, prep.fmt, eos)})
    eval_set = Dataset.from_dict({"text": training_texts(prep.eval_examples, prep.fmt, eos)}) \
        if prep.eval_examples else None
    monitor = _callback(prep, on_step)
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=train_set,
                         eval_dataset=eval_set, callbacks=[monitor],
                         args=sft_config(prep.cfg, precision, output, len(train_set),
                                          eval_set is not None, (ctx or DistContext()).world))
    trainer = _mask_prompts(trainer, tokenizer, prep.fmt)
    for noisy in (PrinterCallback, ProgressCallback):  # locollm's Progress shows the run
        trainer.remove_callback(noisy)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.train(resume_from_checkpoint=_resume_path(output) if resume else None)
    history = monitor.history
    if eval_set is not None and (not history.eval or history.eval[-1]["step"] != history.steps):
        final = trainer.evaluate()
        history.eval.append({"step": trainer.state.global_step, "loss": final["eval_loss"]})
    history.seconds = time.perf_counter() - monitor.t0
    history.peak_memory_mb = torch.cuda.max_memory_allocated() / 2**20 \
        if torch.cuda.is_available() else peak_rss_mb()
    return trainer.model, history, "cuda" if torch.cuda.is_available() else "cpu"
