"""Write LoRA pairs as a llama.cpp LoRA GGUF (``general.type = adapter``), in-process.

llama.cpp expects, per adapted weight ``W`` (out x in), ``<name>.weight.lora_a`` with the
shape of PEFT's ``lora_A`` (r x in) and ``<name>.weight.lora_b`` with PEFT's ``lora_B``
(out x r), and the scale given by ``adapter.lora.alpha / r``. Both are stored as float32:
they are a few MB and exactness matters more than size here.

This writer covers the architectures of :data:`locollm.gguf.names.HF_ARCHITECTURES`, whose
adapted weights llama.cpp's converter maps by name (plus the q/k row permutation of
``ROPE_PERMUTED`` ones, mirrored here). It exists for speed: a rank-16 adapter takes well
under a second, where starting llama.cpp's converter costs seconds of torch and transformers
imports. The tests check it writes the same tensors as that converter.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from ..errors import AdapterError
from ..gguf.names import ROPE_PERMUTED, gguf_weight_name, split_lora_key
from ..paths import atomic_path


def permute_rows(b: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder B's rows as llama.cpp's converter reorders q/k weight rows for its rotary
    embedding (conversion/llama.py ``LlamaModel.permute``): within each head, the two halves
    are interleaved."""
    out = b.shape[0]
    return (b.reshape(n_head, 2, out // n_head // 2, *b.shape[1:]).swapaxes(1, 2)
            .reshape(b.shape))


def _oriented(module: str, a: np.ndarray, b: np.ndarray, arch: str,
              heads: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    if heads is None or arch not in ROPE_PERMUTED:
        return a, b
    n_head, n_head_kv = heads
    if module.endswith("q_proj"):
        return a, permute_rows(b, n_head)
    if module.endswith("k_proj"):
        return a, permute_rows(b, n_head_kv or n_head)
    return a, b


def write_lora_pairs(pairs: dict[str, tuple[np.ndarray, np.ndarray]], out: str | Path, *,
                     arch: str, n_layers: int, alpha: float, name: str = "locollm-adapter",
                     heads: tuple[int, int] | None = None) -> Path:
    """Write ``{module: (A, B)}`` (base-model module names) to a LoRA GGUF atomically.

    Args:
        pairs: LoRA A (r x in) and B (out x r) per adapted module, e.g.
            ``model.layers.0.self_attn.q_proj``.
        out: the ``.gguf`` path to write.
        arch: the base's llama.cpp architecture (e.g. ``gemma3``).
        n_layers: the base's block count.
        alpha: LoRA alpha; llama.cpp scales each pair by ``alpha / rank``.
        name: ``general.name`` stored in the file.
        heads: (attention heads, key/value heads) of the base, for architectures whose q/k
            rows llama.cpp's converter permutes.
    """
    tensors = {}
    for module, (a, b) in pairs.items():
        a, b = _oriented(module, a, b, arch, heads)
        base = gguf_weight_name(module, arch, n_layers)
        tensors[f"{base}.lora_a"], tensors[f"{base}.lora_b"] = a, b
    with atomic_path(out) as tmp:
        writer = gguf.GGUFWriter(str(tmp), arch)
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(alpha))
        writer.add_name(name)
        for tensor_name in sorted(tensors):
            writer.add_tensor(tensor_name,
                              np.ascontiguousarray(tensors[tensor_name], dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return Path(out)


def write_lora_gguf(tensors: dict[str, np.ndarray], out: str | Path, *, arch: str,
                    n_layers: int, alpha: float, name: str = "locollm-adapter",
                    heads: tuple[int, int] | None = None) -> Path:
    """Write LoRA tensors keyed by their PEFT names (``...q_proj.lora_A.weight``); see
    :func:`write_lora_pairs`."""
    parts: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        module, part = split_lora_key(key)
        parts.setdefault(module, {})[part] = value
    incomplete = [k for k, v in parts.items() if set(v) != {"a", "b"}]
    if incomplete:
        raise AdapterError(f"LoRA tensors without their A/B partner: {incomplete[:3]}")
    pairs = {m: (v["a"], v["b"]) for m, v in parts.items()}
    return write_lora_pairs(pairs, out, arch=arch, n_layers=n_layers, alpha=alpha, name=name,
                            heads=heads)
