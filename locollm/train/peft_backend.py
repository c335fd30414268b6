"""The peft backend: transformers + PEFT with a plain, fast training loop.

Used when there is no CUDA with the gpu extra (or with ``--backend peft``): CPUs, Macs (MPS)
and CUDA machines without Unsloth. On a CPU it trains in float32 on purpose: bf16 autocast was
many times slower on an AVX2 CPU. Speed comes from projecting the vocabulary only at answer
positions and computing a batch's shared prompt prefix once (:mod:`.loss`), and from
length-grouped batches that carry little padding (:mod:`.tokens`).

Every ``save_every`` steps the loop writes a checkpoint (:mod:`.checkpoint`) from which
``--resume`` continues with the same batches, optimizer state and learning-rate schedule.

Under ``torchrun``/``accelerate launch`` the loop is data-parallel (:mod:`.distributed`): every
rank draws the same length-grouped batches from the same seeded order, an optimizer step takes
``grad_accum x world`` of them and each rank computes its share, the LoRA gradients are summed
over the ranks, and rank 0 alone writes checkpoints. A step therefore sees exactly the batches
a single process with ``grad_accum x world`` would, and reaches the same weights.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from ..config import TrainConfig
from ..errors import ConfigError
from . import checkpoint, distributed
from .checkpoint import LoopState
from .distributed import DistContext
from .loading import quiet_load
from .monitor import History, peak_rss_mb, step_record
from .tokens import TokenizedExample, collate, length_grouped_batches


def pick_device() -> str:
    """cuda, mps or cpu: the peft backend runs on whatever torch offers."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_precision(requested: str, device: str) -> str:
    """``auto`` becomes bf16 on a CUDA card that has it, fp16 on one that doesn't (a T4),
    and fp32 on CPU and MPS; an explicit choice is kept."""
    if requested != "auto":
        return requested
    if device == "cuda":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def cpu_threads(requested: int | None) -> int:
    """Threads for torch on a CPU: the cores this process may use, unless told otherwise."""
    if requested:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def load_model(model_dir: Path, cfg: TrainConfig, device: str):
    """Base model with fresh LoRA layers on ``cfg.target_modules``.

    The base is float32 on CPU and MPS; on CUDA it is held in the run's half precision
    (PEFT keeps the LoRA weights themselves in float32 and autocast does the rest).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(cfg.seed)
    precision = resolve_precision(cfg.precision, device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32) \
        if device == "cuda" else torch.float32
    with quiet_load():
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model.config.use_cache = False  # a training step never reuses a KV cache
    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
    try:
        model = get_peft_model(model, lora)
    except ValueError as exc:  # peft: "Target modules {...} not found in the base model"
        raise ConfigError(f"LoRA target modules {list(cfg.target_modules)} do not fit this "
                          f"model ({exc})", fix="set target_modules to linear layer names "
                          "of the base model, e.g. q_proj, v_proj") from exc
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    return model.to(device)


def autocast(device: str, precision: str):
    """Mixed-precision context for the forward pass (a no-op in fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device, dtype=dtype)


def eval_loss(model, items: list[TokenizedExample], batch_size: int, pad_id: int,
              device: str, precision: str = "fp32",
              ctx: DistContext | None = None) -> float:
    """Token-weighted mean loss over ``items`` without gradients.

    In a distributed run each rank scores every ``world``-th example and the sums are
    combined, so every rank returns the loss over all of ``items``.
    """
    import torch

    from .loss import causal_lm_loss

    ctx = ctx or DistContext()
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), autocast(device, precision):
        ordered = sorted(items, key=lambda e: len(e.input_ids))[ctx.rank::ctx.world]
        for i in range(0, len(ordered), batch_size):
            batch = ordered[i:i + batch_size]
            ids, mask, labels = (t.to(device) for t in collate(batch, pad_id))
            loss, n = causal_lm_loss(model, ids, mask, labels)
            total += float(loss) * n
            count += n
    model.train()
    if ctx.active:
        total, count = distributed.all_reduce_sum([total, count], device)
    return total / max(count, 1)


def total_steps(cfg: TrainConfig, n_train: int, world: int = 1) -> int:
    """Optimizer steps for the run: ``max_steps`` or epochs x batches / (grad_accum x world).

    ``world`` processes each take ``grad_accum`` batches per step, so a data-parallel run
    covers the epochs in ``world`` times fewer steps.
    """
    if cfg.max_steps:
        return cfg.max_steps
    per_epoch = math.ceil(n_train / cfg.batch_size)
    return max(1, math.ceil(per_epoch * cfg.epochs / (cfg.grad_accum * world)))


def make_optimizer(model, cfg: TrainConfig, steps: int):
    """AdamW on the LoRA weights with linear warmup, then linear decay to 0."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = max(1, int(steps * cfg.warmup_ratio))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    return params, opt, sched


def _micro_batches(loop: LoopState, items: list[TokenizedExample], cfg: TrainConfig,
                   world: int = 1) -> list[list[TokenizedExample]]:
    """The step's ``grad_accum x world`` batches, starting a freshly shuffled epoch when one
    runs out (every rank draws the same ones: same seed, same order)."""
    micro = []
    for _ in range(cfg.grad_accum * world):
        if not loop.queue:
            loop.queue = length_grouped_batches(items, cfg.batch_size, loop.rng)
        micro.append([items[i] for i in loop.queue.pop()])
    return micro


def _train_step(model, micro, pad_id: int, device: str, precision: str,
                scaler, ctx: DistContext | None = None) -> tuple[float, int, int]:
    """Forward and backward over this rank's share of the step's micro-batches; returns
    (loss summed over its labelled tokens, labels, tokens).

    Each micro-batch's loss is weighted by its share of the labelled tokens of the whole step
    (every rank's batches), so the gradients, summed over the ranks, are those of the mean
    over every answer token in the step.
    """
    from .loss import causal_lm_loss

    ctx = ctx or DistContext()
    n_all = sum(e.n_answer for b in micro for e in b)
    step_loss, labelled, tokens = 0.0, 0, 0
    for batch in micro[ctx.rank::ctx.world]:
        ids, mask, labels = (t.to(device) for t in collate(batch, pad_id))
        with autocast(device, precision):
            loss, n = causal_lm_loss(model, ids, mask, labels)
        scaled = loss * n / max(n_all, 1)
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        step_loss += loss.item() * n
        labelled += n
        tokens += int(mask.sum())
    return step_loss, labelled, tokens


def _apply_update(params, opt, sched, scaler) -> None:
    import torch

    if scaler is not None:
        scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)


def run(model, train_items: list[TokenizedExample], eval_items: list[TokenizedExample],
        cfg: TrainConfig, pad_id: int, device: str,
        on_step: Callable[[dict], None] | None = None, *, output: Path | None = None,
        resume: bool = False, fingerprint: dict | None = None,
        ctx: DistContext | None = None) -> History:
    """Train ``model`` in place and return the loss history.

    Args:
        output: the adapter folder; checkpoints go to ``output/.checkpoint`` every
            ``cfg.save_every`` steps (none when ``output`` is None).
        resume: continue from that checkpoint (the caller has checked it matches).
        fingerprint: stored in each checkpoint to recognise the run on ``--resume``.
        ctx: this process's place in a data-parallel group (default: a group of one). Every
            rank returns the same history; only rank 0 writes checkpoints and calls
            ``on_step``.
    """
    import torch

    ctx = ctx or DistContext()
    if device == "cpu":
        torch.set_num_threads(cpu_threads(cfg.threads))
    precision = resolve_precision(cfg.precision, device)
    scaler = torch.amp.GradScaler(device) if precision == "fp16" and device == "cuda" else None
    steps = total_steps(cfg, len(train_items), ctx.world)
    params, opt, sched = make_optimizer(model, cfg, steps)
    loop = LoopState(0, [], random.Random(cfg.seed), History(steps=steps))
    if resume and output is not None and checkpoint.find(output) is not None:
        loop = checkpoint.restore_peft(output, model, opt, sched, scaler)
        loop.history.resumed_at.append(loop.step)
    if ctx.active:
        distributed.broadcast_parameters(params)
    start_step, start, seconds_before = loop.step, time.perf_counter(), loop.history.seconds
    history = loop.history
    eval_before = history.eval_seconds
    model.train()
    for step in range(start_step + 1, steps + 1):
        micro = _micro_batches(loop, train_items, cfg, ctx.world)
        loss_sum, labelled, tokens = _train_step(model, micro, pad_id, device, precision,
                                                 scaler, ctx)
        if ctx.active:
            distributed.all_reduce_gradients(params)
            loss_sum, labelled, tokens = distributed.all_reduce_sum(
                [loss_sum, labelled, tokens], device)
            labelled, tokens = int(labelled), int(tokens)
        _apply_update(params, opt, sched, scaler)
        loss = loss_sum / max(labelled, 1)
        loop.step, lr = step, sched.get_last_lr()[0]
        history.answer_tokens += labelled
        history.total_tokens += tokens
        history.train.append({"step": step, "loss": loss, "lr": lr, "tokens": tokens})
        held_out = None
        if eval_items and (step % cfg.eval_every == 0 or step == steps or step == 1):
            held_out = _timed_eval(model, eval_items, cfg, pad_id, device, precision, history,
                                   ctx)
            history.eval.append({"step": step, "loss": held_out})
        history.seconds = seconds_before + time.perf_counter() - start
        record = step_record(step, steps, loss, lr, tokens, time.perf_counter() - start,
                             start_step, history.eval_seconds - eval_before)
        if held_out is not None:
            record["eval_loss"] = held_out
        if output is not None and cfg.save_every and step % cfg.save_every == 0 and \
                step < steps and ctx.is_main:
            checkpoint.save_peft(output, model, opt, sched, scaler, loop, fingerprint or {})
        if on_step and ctx.is_main:
            on_step(record)
    history.seconds = seconds_before + time.perf_counter() - start
    history.peak_memory_mb = max(history.peak_memory_mb, _peak_memory_mb(device))
    return history


def _timed_eval(model, items, cfg: TrainConfig, pad_id: int, device: str, precision: str,
                history: History, ctx: DistContext) -> float:
    """Held-out loss, its time added to ``history.eval_seconds``."""
    began = time.perf_counter()
    loss = eval_loss(model, items, cfg.batch_size, pad_id, device, precision, ctx)
    history.eval_seconds += time.perf_counter() - began
    return loss


def _peak_memory_mb(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return peak_rss_mb()
