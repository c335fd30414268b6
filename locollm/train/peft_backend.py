"""The peft backend: transformers + PEFT in float32 with a plain, fast training loop.

Used when there is no CUDA (or with ``--backend peft``). float32 on purpose: bf16 autocast was
many times slower on an AVX2 CPU. Speed comes from projecting the vocabulary only at answer
positions (:mod:`.loss`) and from length-grouped batches that carry little padding.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..config import TrainConfig
from .tokens import TokenizedExample, collate, length_grouped_batches


@dataclass
class History:
    """What the loop measured, for TRAINING_LOG.md and the loss plot."""

    train: list[dict] = field(default_factory=list)  # {"step", "loss", "tokens", "lr"}
    eval: list[dict] = field(default_factory=list)  # {"step", "loss"}
    seconds: float = 0.0
    answer_tokens: int = 0
    total_tokens: int = 0


def pick_device() -> str:
    """cuda, mps or cpu: the peft backend runs on whatever torch offers."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_model(model_dir: Path, cfg: TrainConfig, device: str):
    """Base model in float32 with fresh LoRA layers on ``cfg.target_modules``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.config.use_cache = False
    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    return model.to(device)


def eval_loss(model, items: list[TokenizedExample], batch_size: int, pad_id: int,
              device: str) -> float:
    """Token-weighted mean loss over ``items`` without gradients."""
    import torch

    from .loss import causal_lm_loss

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        ordered = sorted(items, key=lambda e: len(e.input_ids))
        for i in range(0, len(ordered), batch_size):
            ids, mask, labels = (t.to(device) for t in collate(ordered[i:i + batch_size], pad_id))
            loss, n = causal_lm_loss(model, ids, mask, labels)
            total += float(loss) * n
            count += n
    model.train()
    return total / max(count, 1)


def total_steps(cfg: TrainConfig, n_train: int) -> int:
    """Optimizer steps for the run: ``max_steps`` or epochs x batches / grad_accum."""
    if cfg.max_steps:
        return cfg.max_steps
    per_epoch = math.ceil(n_train / cfg.batch_size)
    return max(1, math.ceil(per_epoch * cfg.epochs / cfg.grad_accum))


def run(model, train_items: list[TokenizedExample], eval_items: list[TokenizedExample],
        cfg: TrainConfig, pad_id: int, device: str,
        on_step: Callable[[dict], None] | None = None) -> History:
    """Train ``model`` in place; return the loss history."""
    import torch

    from .loss import causal_lm_loss

    if device == "cpu":
        torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = total_steps(cfg, len(train_items))
    warmup = max(1, int(steps * cfg.warmup_ratio))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    rng = random.Random(cfg.seed)
    history = History()
    queue: list[list[int]] = []
    start = time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        step_loss, step_tokens, seq_tokens = 0.0, 0, 0
        micro = []
        for _ in range(cfg.grad_accum):
            if not queue:
                queue = length_grouped_batches(train_items, cfg.batch_size, rng)
            micro.append([train_items[i] for i in queue.pop()])
        n_all = sum(e.n_answer for b in micro for e in b)
        for batch in micro:
            ids, mask, labels = (t.to(device) for t in collate(batch, pad_id))
            loss, n = causal_lm_loss(model, ids, mask, labels)
            (loss * n / max(n_all, 1)).backward()
            step_loss += loss.item() * n
            step_tokens += n
            seq_tokens += int(mask.sum())
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        history.answer_tokens += step_tokens
        history.total_tokens += seq_tokens
        record = {"step": step, "loss": step_loss / max(step_tokens, 1),
                  "lr": sched.get_last_lr()[0], "tokens": seq_tokens,
                  "elapsed": time.perf_counter() - start, "steps": steps}
        if eval_items and (step % cfg.eval_every == 0 or step == steps or step == 1):
            record["eval_loss"] = eval_loss(model, eval_items, cfg.batch_size, pad_id, device)
            history.eval.append({"step": step, "loss": record["eval_loss"]})
        history.train.append({k: record[k] for k in ("step", "loss", "lr", "tokens")})
        if on_step:
            on_step(record)
    history.seconds = time.perf_counter() - start
    return history
