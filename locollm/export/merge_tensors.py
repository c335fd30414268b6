"""Merge a LoRA into a base GGUF, tensor by tensor.

Only the adapted weights change: each is dequantized (``gguf.quants``), gets
``scale * alpha / r * B @ A`` added in float32, and is written as float32. Every other tensor
keeps its original quantized bytes, and the whole key/value section (the tokenizer included) is
copied byte for byte. The result is then quantized by llama.cpp's own quantizer
(:func:`locollm.runtime.engine.quantize_model`), which leaves tensors that are already of the
chosen type untouched, so unchanged weights are not quantized twice.

The file is written here from the header layout (:func:`locollm.gguf.header.read_layout`)
rather than through ``gguf.GGUFReader`` and ``GGUFWriter``: the reader turns a 262k-entry
vocabulary into close to a million numpy views before anything else (most of a minute on a
busy two-core machine, against a few seconds for the whole merge here), and the writer would
serialise it again value by value, for metadata that does not change.
"""

from __future__ import annotations

import math
from pathlib import Path

import gguf
import numpy as np

from ..errors import AdapterError
from ..gguf.header import Layout, TensorInfo, read_layout
from ..paths import atomic_path


def read_lora_gguf(path: str | Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], float]:
    """LoRA pairs ``{base tensor name: (A, B)}`` and alpha from a LoRA GGUF."""
    reader = gguf.GGUFReader(str(path))  # an adapter has no vocabulary: quick
    alpha_field = reader.fields.get("adapter.lora.alpha")
    if alpha_field is None:
        raise AdapterError("LoRA GGUF has no adapter.lora.alpha", file=path)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for tensor in reader.tensors:
        base, _, part = tensor.name.rpartition(".lora_")
        pairs.setdefault(base, {})[part] = np.asarray(tensor.data, dtype=np.float32)
    return {k: (v["a"], v["b"]) for k, v in pairs.items()}, float(alpha_field.contents())


def _nbytes(dims: tuple[int, ...], kind: int) -> int:
    block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(kind)]
    return math.prod(dims[1:]) * dims[0] // block * size


def _pad(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def _weight(fh, layout: Layout, tensor: TensorInfo) -> np.ndarray:
    """A base tensor dequantized to float32, shaped (out, in) like the LoRA's B @ A."""
    fh.seek(layout.data_start + tensor.offset)
    raw = np.frombuffer(fh.read(_nbytes(tensor.dims, tensor.type)), dtype=np.uint8)
    rows = math.prod(tensor.dims[1:])
    data = gguf.quants.dequantize(raw.reshape(rows, -1), gguf.GGMLQuantizationType(tensor.type))
    return data.reshape(rows, tensor.dims[0]).astype(np.float32)


def _write_infos(out, layout: Layout, merged: set[str]) -> None:
    offset = 0
    for tensor in layout.tensors:
        kind = int(gguf.GGMLQuantizationType.F32) if tensor.name in merged else tensor.type
        name = tensor.name.encode("utf-8")
        out.write(len(name).to_bytes(8, "little") + name)
        out.write(len(tensor.dims).to_bytes(4, "little"))
        for dim in tensor.dims:
            out.write(dim.to_bytes(8, "little"))
        out.write(kind.to_bytes(4, "little") + offset.to_bytes(8, "little"))
        offset += _pad(_nbytes(tensor.dims, kind), layout.alignment)
    out.write(b"\0" * (_pad(out.tell(), layout.alignment) - out.tell()))


def merge_lora(base_gguf: str | Path, lora_gguf: str | Path, out: str | Path,
               scale: float = 1.0) -> Path:
    """Write ``base + scale * alpha / r * B @ A`` as a GGUF (adapted tensors in float32)."""
    pairs, alpha = read_lora_gguf(lora_gguf)
    layout = read_layout(base_gguf)
    names = {t.name for t in layout.tensors}
    missing = sorted(set(pairs) - names)
    if missing:
        raise AdapterError(f"LoRA targets tensors the base does not have: {missing[:3]}",
                           file=lora_gguf, fix="export the adapter against this base")
    with open(base_gguf, "rb") as src, atomic_path(out) as tmp, open(tmp, "wb") as dst:
        dst.write(src.read(layout.header_end))  # magic, counts and key/values, unchanged
        _write_infos(dst, layout, set(pairs))
        for tensor in layout.tensors:
            if tensor.name in pairs:
                a, b = pairs[tensor.name]
                weight = _weight(src, layout, tensor) + (scale * alpha / a.shape[0]) * (b @ a)
                data = weight.astype(np.float32).tobytes()
            else:
                src.seek(layout.data_start + tensor.offset)
                data = src.read(_nbytes(tensor.dims, tensor.type))
            dst.write(data + b"\0" * (_pad(len(data), layout.alignment) - len(data)))
    return Path(out)
