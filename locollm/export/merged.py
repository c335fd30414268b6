"""Merged exports: the adapter folded into its base, as one quantized GGUF or as safetensors.

The GGUF merge works tensor by tensor on the base GGUF (:mod:`locollm.export.merge_tensors`)
and quantizes with llama.cpp's own quantizer; the safetensors merge goes through PEFT's
``merge_and_unload`` in float32.
"""

from __future__ import annotations

from pathlib import Path

from ..adapter.meta import load_meta, lora_gguf_path
from ..errors import AdapterError
from .lora import base_for, export_lora_gguf


def export_merged(adapter_dir: str | Path, out: str | Path | None = None,
                  quant: str = "q4_k_m") -> Path:
    """Merge the adapter into its base GGUF and quantize (default Q4_K_M): one file to ship."""
    import tempfile

    from ..runtime.engine import quantize_model
    from .merge_tensors import merge_lora

    adapter_dir = Path(adapter_dir)
    meta = load_meta(adapter_dir)
    base = base_for(meta)
    if base.gguf is None:
        raise AdapterError("merging into a GGUF needs a GGUF base", file=adapter_dir,
                           fix="use --merged-hf to write merged safetensors instead")
    lora = lora_gguf_path(adapter_dir)
    if not lora.exists():
        export_lora_gguf(adapter_dir)
    out = Path(out) if out else adapter_dir / f"{meta.name}-merged-{quant}.gguf"
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        merged = merge_lora(base.gguf, lora, Path(tmp) / "merged-f32.gguf")
        return quantize_model(merged, out, quant)


def export_merged_hf(adapter_dir: str | Path, out: str | Path) -> Path:
    """Merged float32 safetensors folder (for the hub or other runtimes)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..models import training_dir
    from ..paths import atomic_dir
    from ..train.loading import quiet_load

    adapter_dir = Path(adapter_dir)
    base = base_for(load_meta(adapter_dir))
    model_dir = training_dir(base)
    with quiet_load():
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    with atomic_dir(out) as tmp:
        merged.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(model_dir).save_pretrained(tmp)
    return Path(out)
