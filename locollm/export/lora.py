"""Export an adapter folder's PEFT weights as a LoRA GGUF for hot-swapping on the base.

No llama.cpp clone and no compiler: the GGUF is written with the ``gguf`` package
(:mod:`locollm.export.lora_writer`). The base an adapter names must be the file it was trained
on (same sha256), which :func:`base_for` checks for every export.
"""

from __future__ import annotations

from pathlib import Path

from ..adapter.meta import AdapterMeta, load_meta, lora_gguf_path
from ..errors import AdapterError
from ..models import BaseModel, resolve


def base_for(meta: AdapterMeta, base_model: str | None = None) -> BaseModel:
    """The base an adapter was trained on; a different file (sha256) is an error."""
    base = resolve(base_model or meta.base_model)
    if meta.base_sha256 and base.sha256 and base.sha256 != meta.base_sha256:
        raise AdapterError(
            f"adapter {meta.name!r} was trained on base sha256 {meta.base_sha256[:12]}…, "
            f"this base is {base.sha256[:12]}…", fix="retrain the adapter on this base model")
    return base


def export_lora_gguf(adapter_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``adapter.gguf`` (LoRA-only, float32) from the folder's PEFT weights."""
    from safetensors.numpy import load_file

    from ..gguf.names import read_info
    from .lora_writer import write_lora_gguf

    adapter_dir = Path(adapter_dir)
    meta = load_meta(adapter_dir)
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.exists():
        raise AdapterError("adapter_model.safetensors is missing", file=adapter_dir,
                           fix="train the adapter first")
    base = base_for(meta)
    if base.gguf is None:
        raise AdapterError("the base has no GGUF to serve with", file=adapter_dir,
                           fix="export a merged GGUF instead (locollm export --merged)")
    info = read_info(base.gguf)
    tensors = {k: v for k, v in load_file(weights).items() if ".lora_" in k}
    return write_lora_gguf(tensors, out or lora_gguf_path(adapter_dir), arch=info.architecture,
                           n_layers=info.n_layers, alpha=meta.lora_alpha, name=meta.name)
