"""Merge a LoRA into a base GGUF, tensor by tensor, with the ``gguf`` package.

Only the adapted weights change: each is dequantized, gets ``scale * B @ A`` added in float32,
and is written as float32. Every other tensor keeps its original quantized bytes, and all
metadata (tokenizer included) is copied. The result is then quantized by llama.cpp's own
quantizer (:func:`locollm.runtime.engine.quantize_model`), which leaves tensors that are already
of the chosen type untouched, so unchanged weights are not quantized twice.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from ..errors import AdapterError
from ..paths import atomic_path

SKIP_KEYS = ("general.architecture", "general.file_type")


def _copy_metadata(reader: gguf.GGUFReader, writer: gguf.GGUFWriter) -> None:
    for field in reader.fields.values():
        if field.name in SKIP_KEYS or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)


def read_lora_gguf(path: str | Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], float]:
    """LoRA pairs ``{base tensor name: (A, B)}`` and alpha from a LoRA GGUF."""
    reader = gguf.GGUFReader(str(path))
    alpha_field = reader.fields.get("adapter.lora.alpha")
    if alpha_field is None:
        raise AdapterError("LoRA GGUF has no adapter.lora.alpha", file=path)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for tensor in reader.tensors:
        base, _, part = tensor.name.rpartition(".lora_")
        pairs.setdefault(base, {})[part] = np.asarray(tensor.data, dtype=np.float32)
    return {k: (v["a"], v["b"]) for k, v in pairs.items()}, float(alpha_field.contents())


def merge_lora(base_gguf: str | Path, lora_gguf: str | Path, out: str | Path,
               scale: float = 1.0) -> Path:
    """Write ``base + scale * alpha / r * B @ A`` as a GGUF (adapted tensors in float32)."""
    pairs, alpha = read_lora_gguf(lora_gguf)
    reader = gguf.GGUFReader(str(base_gguf))
    arch = reader.fields["general.architecture"].contents()
    names = {t.name for t in reader.tensors}
    missing = sorted(set(pairs) - names)
    if missing:
        raise AdapterError(f"LoRA targets tensors the base does not have: {missing[:3]}",
                           file=lora_gguf, fix="export the adapter against this base")
    with atomic_path(out) as tmp:
        writer = gguf.GGUFWriter(str(tmp), arch)
        _copy_metadata(reader, writer)
        writer.add_file_type(gguf.LlamaFileType.ALL_F32)  # mixed; the quantizer sets the real one
        for tensor in reader.tensors:
            if tensor.name in pairs:
                a, b = pairs[tensor.name]
                weight = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
                weight = weight.astype(np.float32) + (scale * alpha / a.shape[0]) * (b @ a)
                writer.add_tensor(tensor.name, weight.astype(np.float32))
            else:
                writer.add_tensor(tensor.name, tensor.data, raw_shape=tensor.data.shape,
                                  raw_dtype=tensor.tensor_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return Path(out)
