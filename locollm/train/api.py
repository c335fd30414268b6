"""``train(cfg)``: validate, load, train with the chosen backend, write the adapter folder."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..adapter import PEFT_FILES, AdapterMeta
from ..config import TrainConfig
from ..data import load_examples
from ..errors import ConfigError
from ..models import BaseModel, resolve, training_dir
from ..paths import atomic_dir, atomic_write
from ..prompt import STOP_STRINGS, PromptFormat
from .peft_backend import History


@dataclass
class TrainResult:
    """Where the adapter went and what the run measured."""

    output: Path
    history: History
    n_train: int
    n_eval: int
    backend: str
    device: str


def choose_backend(cfg: TrainConfig) -> str:
    """unsloth when asked for, or on auto when CUDA and the gpu extra are present; else peft."""
    if cfg.backend != "auto":
        return cfg.backend
    import importlib.util

    if importlib.util.find_spec("unsloth") is None:
        return "peft"
    import torch

    return "unsloth" if torch.cuda.is_available() else "peft"


def split_heldout(items: list, fraction: float, seed: int) -> tuple[list, list]:
    """Seeded held-out slice for eval loss; at least one example when enabled."""
    if fraction <= 0 or len(items) < 10:
        return items, []
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, int(len(items) * fraction))
    held = set(order[:n_eval])
    return ([x for i, x in enumerate(items) if i not in held],
            [x for i, x in enumerate(items) if i in held])


def write_outputs(model, cfg: TrainConfig, base: BaseModel, arch: str, history: History,
                  backend: str, dataset: Path) -> Path:
    """Write the adapter folder: weights first, metadata last, each file renamed into place."""
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out / ".weights") as tmp:
        model.save_pretrained(tmp)
        for name in PEFT_FILES:
            shutil.move(str(tmp / name), str(out / name))
    training = out / "training"
    training.mkdir(exist_ok=True)
    target = training / "dataset.jsonl"
    if dataset.resolve() != target.resolve():
        atomic_write(target, dataset.read_bytes())
    atomic_write(training / "train_config.yaml",
                 "# Exact config of the last run (locollm train)\n" +
                 yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    atomic_write(training / "metrics.json", json.dumps(
        {"train": history.train, "eval": history.eval, "seconds": history.seconds,
         "answer_tokens": history.answer_tokens, "total_tokens": history.total_tokens},
        indent=1))
    meta = AdapterMeta(
        name=out.resolve().name, base_model=base.name, base_sha256=base.sha256,
        architecture=arch, lora_rank=cfg.lora_rank, lora_alpha=cfg.alpha,
        target_modules=list(cfg.target_modules), prompt_format=PromptFormat().name,
        stop=list(STOP_STRINGS), backend=backend,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    meta.save(out)
    return out


def _architecture(base: BaseModel, model) -> str:
    if base.gguf is not None:
        from ..gguf.names import read_info

        return read_info(base.gguf).architecture
    return getattr(model.config, "model_type", "unknown").replace("_text", "")


def train(cfg: TrainConfig, on_step: Callable[[dict], None] | None = None) -> TrainResult:
    """Train a LoRA adapter as ``cfg`` says and write the adapter folder.

    The dataset is validated and tokenized before the model is loaded, so bad input fails in
    seconds.
    """
    from .loading import torch_env

    torch_env()
    if not cfg.dataset or not cfg.output:
        raise ConfigError("training needs a dataset and an output folder",
                          fix="pass --dataset FILE and --output adapters/<domain>/")
    dataset = Path(cfg.dataset)
    examples = load_examples(dataset)
    base = resolve(cfg.base_model)
    backend = choose_backend(cfg)
    if backend == "unsloth":
        from . import unsloth_backend

        return unsloth_backend.train(cfg, base, examples)
    from transformers import AutoTokenizer

    from . import peft_backend
    from .tokens import tokenize_examples

    model_dir = training_dir(base)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    items = tokenize_examples(examples, tokenizer, cfg.max_seq_len, source=str(dataset))
    train_items, eval_items = split_heldout(items, cfg.eval_fraction, cfg.seed)
    device = peft_backend.pick_device()
    model = peft_backend.load_model(model_dir, cfg, device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    history = peft_backend.run(model, train_items, eval_items, cfg, pad, device, on_step)
    out = write_outputs(model, cfg, base, _architecture(base, model), history, "peft", dataset)
    return TrainResult(out, history, len(train_items), len(eval_items), "peft", device)
