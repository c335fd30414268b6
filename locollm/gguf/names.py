"""Map Hugging Face / PEFT tensor names to llama.cpp GGUF names, and read base GGUF facts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import gguf

from ..errors import AdapterError
from .header import read_keys

_PEFT_PREFIX = re.compile(r"^(base_model\.model\.)+")
_LORA_SUFFIX = re.compile(r"\.lora_([AB])(\.default)?\.weight$")


@dataclass(frozen=True)
class GGUFInfo:
    """What locollm needs to know about a base GGUF."""

    architecture: str
    n_layers: int
    name: str


def read_info(path: str | Path) -> GGUFInfo:
    """Architecture, block count and model name of a GGUF (reads the header only)."""
    arch = read_keys(path, {"general.architecture"}).get("general.architecture")
    if arch is None:
        raise AdapterError("GGUF has no general.architecture", file=path)
    found = read_keys(path, {f"{arch}.block_count", "general.name"})
    return GGUFInfo(arch, int(found.get(f"{arch}.block_count", 0)),
                    found.get("general.name", Path(path).stem))


def model_arch(arch: str) -> gguf.MODEL_ARCH:
    """The gguf package's enum for an architecture string such as ``gemma3``."""
    for member, name in gguf.MODEL_ARCH_NAMES.items():
        if name == arch:
            return member
    raise AdapterError(f"architecture {arch!r} is unknown to the gguf package",
                       fix="upgrade the gguf package")


def lora_tensor_name(peft_key: str, arch: str, n_layers: int) -> tuple[str, str]:
    """GGUF name and ``a``/``b`` for a PEFT LoRA key.

    ``base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`` becomes
    ``("blk.3.attn_q.weight.lora_a", "a")``.
    """
    match = _LORA_SUFFIX.search(peft_key)
    if not match:
        raise AdapterError(f"not a LoRA A/B tensor: {peft_key}")
    module = _PEFT_PREFIX.sub("", peft_key[: match.start()])
    mapping = gguf.get_tensor_name_map(model_arch(arch), n_layers)
    base = mapping.get_name(module)
    if base is None:
        raise AdapterError(f"no llama.cpp tensor for {module!r} in architecture {arch}",
                           fix="train LoRA only on attention/MLP projections")
    part = match.group(1).lower()
    return f"{base}.weight.lora_{part}", part
