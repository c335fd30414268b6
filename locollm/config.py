"""Configuration dataclasses. Precedence: defaults < profile YAML < domain YAML < explicit flags.

Every field has a comment; ``configs/*.yaml`` repeat each key with the same meaning. Flags
default to ``None`` in the CLI so they only override when given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class TrainConfig:
    """Everything that decides a training run; written next to the weights as train_config.yaml."""

    # Base model: embedded name (gemma-3-270m), a .gguf file, an HF folder, or a hub id.
    base_model: str = "gemma-3-270m"
    # Training JSONL (instruction / input / output).
    dataset: str = ""
    # Adapter folder to write (adapters/<domain>/).
    output: str = ""
    # LoRA rank: capacity of the adapter. 8-32 is typical; raise it if the adapter underfits.
    lora_rank: int = 16
    # LoRA alpha (scale = alpha / rank). None means 2 x rank.
    lora_alpha: int | None = None
    # Dropout on the LoRA input; 0 is fastest and fine for small runs.
    lora_dropout: float = 0.0
    # Linear layers that get a LoRA: attention and MLP projections.
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    # Passes over the training data (the guide: 3-5 for ~500 examples, 1-2 for 5000+).
    epochs: float = 3.0
    # Stop after this many optimizer steps (overrides epochs when set).
    max_steps: int | None = None
    # Peak learning rate (AdamW); warmup then linear decay to 0.
    lr: float = 2e-4
    # Fraction of steps spent warming the learning rate up.
    warmup_ratio: float = 0.05
    # AdamW weight decay on the LoRA weights.
    weight_decay: float = 0.0
    # Examples per micro-batch.
    batch_size: int = 8
    # Micro-batches per optimizer step (effective batch = batch_size x grad_accum).
    grad_accum: int = 1
    # Longest example in tokens (prompt + answer); longer ones are an error, not silently cut.
    max_seq_len: int = 512
    # Fraction of the training data held out for eval loss (0 disables it).
    eval_fraction: float = 0.05
    # Compute held-out loss every this many optimizer steps.
    eval_every: int = 25
    # Write a resumable checkpoint every this many optimizer steps (0 disables).
    save_every: int = 50
    # Random seed for the split, shuffling and LoRA init.
    seed: int = 42
    # auto (unsloth on CUDA with the gpu extra, else peft), unsloth, or peft.
    backend: str = "auto"
    # Compute precision: auto (bf16 where supported, fp16 on a T4, fp32 on CPU), fp32, fp16, bf16.
    precision: str = "auto"
    # Load the base in 4-bit (unsloth backend only; QLoRA).
    load_in_4bit: bool = True
    # Trade compute for memory (recomputes activations in the backward pass). None: on with
    # the unsloth backend (its offloaded variant, ~30% less VRAM), off with peft.
    gradient_checkpointing: bool | None = None
    # CPU threads for torch; None picks the number of cores.
    threads: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.lora_rank <= 512:
            problems.append(f"lora_rank {self.lora_rank} is outside 1..512 (try 8, 16 or 32)")
        if not 0 < self.lr <= 1e-2:
            problems.append(f"lr {self.lr} is outside (0, 0.01] (LoRA usually wants 1e-4..3e-4)")
        if self.epochs <= 0 and not self.max_steps:
            problems.append(f"epochs {self.epochs} must be positive")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"max_steps {self.max_steps} must be at least 1")
        if self.batch_size < 1 or self.grad_accum < 1:
            problems.append("batch_size and grad_accum must be at least 1")
        if not 0 <= self.eval_fraction < 0.5:
            problems.append(f"eval_fraction {self.eval_fraction} must be in [0, 0.5)")
        if not 16 <= self.max_seq_len <= 131072:
            problems.append(f"max_seq_len {self.max_seq_len} must be in 16..131072")
        if self.backend not in ("auto", "unsloth", "peft"):
            problems.append(f"backend {self.backend!r} must be auto, unsloth or peft")
        if self.precision not in ("auto", "fp32", "fp16", "bf16"):
            problems.append(f"precision {self.precision!r} must be auto, fp32, fp16 or bf16")
        if self.lora_alpha is not None and not 1 <= self.lora_alpha <= 4096:
            problems.append(f"lora_alpha {self.lora_alpha} is outside 1..4096 (default 2 x rank)")
        if not 0 <= self.lora_dropout < 1:
            problems.append(f"lora_dropout {self.lora_dropout} must be in [0, 1)")
        if not self.target_modules:
            problems.append("target_modules is empty (try q_proj, k_proj, v_proj, o_proj)")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio {self.warmup_ratio} must be in [0, 1)")
        if self.weight_decay < 0:
            problems.append(f"weight_decay {self.weight_decay} must not be negative")
        if self.eval_every < 1:
            problems.append(f"eval_every {self.eval_every} must be at least 1")
        if self.save_every < 0:
            problems.append(f"save_every {self.save_every} must be 0 (off) or more")
        if self.threads is not None and self.threads < 1:
            problems.append(f"threads {self.threads} must be at least 1")
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems),
                              fix="change the flag or the YAML key named above")

    @property
    def alpha(self) -> int:
        """The LoRA alpha actually used."""
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_rank

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (YAML-ready)."""
        return dataclasses.asdict(self)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a located error for bad YAML."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError("config file not found", file=path) from exc
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ConfigError(f"invalid YAML: {exc}", file=path,
                          line=None if line is None else line + 1) from exc
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of keys to values", file=path)
    return data


def _coerce(name: str, kind: str, value: Any, where: str) -> Any:
    """Check a YAML or flag value against the field's annotation, converting where safe.

    YAML reads ``2e-4`` (no dot) as a string and ``16`` as an int where a float is wanted;
    both are accepted. Anything else of the wrong type is an error naming the key and layer.
    """
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{name} must be {expected}, got {value!r}", file=where)

    base = kind.replace(" | None", "").strip()
    if base == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
    elif base == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad("a whole number")
    elif base == "float":
        if isinstance(value, bool):
            raise bad("a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad("a number") from None
    elif base == "str":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # a model or folder named 3b
        if not isinstance(value, str):
            raise bad("text")
    elif base.startswith("list"):
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise bad("a list")
        return list(value)
    return value


def merge_config(cls: type, *layers: dict[str, Any], sources: list[str] | None = None):
    """Build ``cls`` from dict layers, later layers winning; ``None`` values never override.

    Unknown keys and values of the wrong type are errors that name the layer they came from.
    """
    fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    merged: dict[str, Any] = {}
    for i, layer in enumerate(layers):
        where = sources[i] if sources and i < len(sources) else f"layer {i}"
        unknown = sorted(set(layer) - set(fields))
        if unknown:
            raise ConfigError(f"unknown config key(s) {unknown}", file=where,
                              fix=f"valid keys: {', '.join(sorted(fields))}")
        merged.update({k: _coerce(k, fields[k], v, where)
                       for k, v in layer.items() if v is not None})
    try:
        return cls(**merged)
    except TypeError as exc:
        raise ConfigError(f"bad config value: {exc}") from exc
