"""Map Hugging Face / PEFT tensor names to llama.cpp GGUF names, and read base GGUF facts.

``HF_ARCHITECTURES`` lists the Hugging Face model classes whose LoRA tensors locollm writes
itself (:mod:`locollm.export.lora_writer`): for them llama.cpp's converter maps each adapted
weight by name alone, except the rotary q/k row order of ``ROPE_PERMUTED`` architectures. Any
other architecture goes through llama.cpp's own converter.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import gguf

from ..errors import AdapterError
from .header import read_keys

# Hugging Face model class (config.json "architectures") -> llama.cpp architecture
HF_ARCHITECTURES = {
    "LlamaForCausalLM": "llama", "MistralForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3",
    "GemmaForCausalLM": "gemma", "Gemma2ForCausalLM": "gemma2", "Gemma3ForCausalLM": "gemma3",
    "Phi3ForCausalLM": "phi3",
}
# llama.cpp architectures whose converter reorders q/k rows for its rotary embedding
# (conversion/llama.py LlamaModel.permute); a LoRA's B rows must follow.
ROPE_PERMUTED = frozenset({"llama"})
_PEFT_PREFIX = re.compile(r"^(base_model\.model\.)+")
_LORA_SUFFIX = re.compile(r"\.lora_([AB])(\.default)?\.weight$")


@dataclass(frozen=True)
class GGUFInfo:
    """What locollm needs to know about a base GGUF."""

    architecture: str
    n_layers: int
    name: str
    n_head: int = 0  # attention heads (0: not recorded)
    n_head_kv: int = 0  # key/value heads (grouped-query attention; 0: not recorded)


def read_info(path: str | Path) -> GGUFInfo:
    """Architecture, block count, heads and model name of a GGUF (reads the header only)."""
    arch = read_keys(path, {"general.architecture"}).get("general.architecture")
    if arch is None:
        raise AdapterError("GGUF has no general.architecture", file=path)
    keys = {"block": f"{arch}.block_count", "head": f"{arch}.attention.head_count",
            "kv": f"{arch}.attention.head_count_kv"}
    found = read_keys(path, {*keys.values(), "general.name"})
    head = int(found.get(keys["head"], 0))
    return GGUFInfo(arch, int(found.get(keys["block"], 0)),
                    found.get("general.name", Path(path).stem), head,
                    int(found.get(keys["kv"], head)))


def model_arch(arch: str) -> gguf.MODEL_ARCH:
    """The gguf package's enum for an architecture string such as ``gemma3``."""
    for member, name in gguf.MODEL_ARCH_NAMES.items():
        if name == arch:
            return member
    raise AdapterError(f"architecture {arch!r} is unknown to the gguf package",
                       fix="upgrade the gguf package")


@functools.lru_cache(maxsize=8)
def _name_map(arch: str, n_layers: int) -> gguf.TensorNameMap:
    """The gguf package's name map; built once per model (it formats every name of every
    block: a tenth of a second each time)."""
    return gguf.get_tensor_name_map(model_arch(arch), n_layers)


def gguf_weight_name(module: str, arch: str, n_layers: int) -> str:
    """llama.cpp's name of a base-model module's weight: ``model.layers.3.self_attn.q_proj``
    becomes ``blk.3.attn_q.weight``.

    Raises:
        AdapterError: the architecture has no tensor of that name.
    """
    base = _name_map(arch, n_layers).get_name(module)
    if base is None:
        raise AdapterError(f"no llama.cpp tensor for {module!r} in architecture {arch}",
                           fix="train LoRA only on attention/MLP projections")
    return f"{base}.weight"


def split_lora_key(peft_key: str) -> tuple[str, str]:
    """Module and ``a``/``b`` of a PEFT LoRA key:
    ``base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`` gives
    ``("model.layers.3.self_attn.q_proj", "a")``."""
    match = _LORA_SUFFIX.search(peft_key)
    if not match:
        raise AdapterError(f"not a LoRA A/B tensor: {peft_key}")
    return _PEFT_PREFIX.sub("", peft_key[: match.start()]), match.group(1).lower()


def lora_tensor_name(peft_key: str, arch: str, n_layers: int) -> tuple[str, str]:
    """GGUF name and ``a``/``b`` for a PEFT LoRA key.

    ``base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`` becomes
    ``("blk.3.attn_q.weight.lora_a", "a")``.
    """
    module, part = split_lora_key(peft_key)
    return f"{gguf_weight_name(module, arch, n_layers)}.lora_{part}", part
