"""Merged exports: the adapter folded into its base, as one quantized GGUF or as safetensors.

A GGUF base is merged tensor by tensor on the base GGUF (:mod:`locollm.export.merge_tensors`)
and quantized by llama.cpp's own quantizer. A Hugging Face base is merged by PEFT's
``merge_and_unload`` in the base's own precision (bfloat16 stays bfloat16), then converted
and quantized like any Hugging Face model (:mod:`locollm.export.convert`). The safetensors
export is the Hugging Face merge in float32.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..adapter.meta import load_meta, lora_gguf_path
from .lora import base_for, export_lora_gguf

# Files of a Hugging Face model folder that a merge rewrites; every other file (tokenizer,
# tokenizer.model, chat template, generation config) is copied as it is, since re-saving a
# tokenizer through transformers can drop files such as tokenizer.model.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_REWRITTEN = {"config.json", "model.safetensors.index.json", "pytorch_model.bin.index.json"}


def merge_hf(adapter_dir: Path, model_dir: Path, dest: Path, dtype="auto") -> Path:
    """Write the base + adapter, merged by PEFT, as a Hugging Face folder at ``dest``.

    Args:
        dtype: ``"auto"`` merges in the base's own precision; a torch dtype forces one.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from ..train.loading import quiet_load, torch_env

    torch_env()
    with quiet_load():
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    merged.save_pretrained(dest)
    for item in model_dir.iterdir():
        if (item.is_file() and item.name not in _REWRITTEN and not (dest / item.name).exists()
                and not item.name.endswith(_WEIGHT_SUFFIXES)):
            shutil.copy2(item, dest / item.name)
    return dest


def export_merged(adapter_dir: str | Path, out: str | Path | None = None,
                  quant: str = "q4_k_m", *, pre_tokenizer: str | None = None) -> Path:
    """Merge the adapter into its base and quantize (default Q4_K_M): one file to ship.

    Args:
        pre_tokenizer: for a Hugging Face base whose BPE tokenizer llama.cpp does not
            recognise; by default the one its earlier conversion recorded.
    """
    adapter_dir = Path(adapter_dir)
    meta = load_meta(adapter_dir)
    base = base_for(meta)
    out = Path(out) if out else adapter_dir / f"{meta.name}-merged-{quant}.gguf"
    if base.gguf is None:
        return _merged_from_hf(adapter_dir, base, out, quant, pre_tokenizer)
    from ..runtime.engine import quantize_model
    from .merge_tensors import merge_lora

    lora = lora_gguf_path(adapter_dir)
    if not lora.exists():
        export_lora_gguf(adapter_dir)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        merged = merge_lora(base.gguf, lora, Path(tmp) / "merged-f32.gguf")
        return quantize_model(merged, out, quant)


def _merged_from_hf(adapter_dir: Path, base, out: Path, quant: str,
                    pre_tokenizer: str | None) -> Path:
    from .convert import convert_folder, recorded_pre_tokenizer

    meta = load_meta(adapter_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}.") as tmp:
        folder = merge_hf(adapter_dir, base.hf_dir, Path(tmp) / "merged")
        name = f"{base.name.rstrip('/').split('/')[-1]}-{meta.name}"
        return convert_folder(folder, out, quant, name=name,
                              pre_tokenizer=pre_tokenizer or recorded_pre_tokenizer(base.hf_dir))


def export_merged_hf(adapter_dir: str | Path, out: str | Path) -> Path:
    """Merged float32 safetensors folder (for the hub or other runtimes)."""
    import torch

    from ..models import training_dir
    from ..paths import atomic_dir

    adapter_dir = Path(adapter_dir)
    base = base_for(load_meta(adapter_dir))
    with atomic_dir(out) as tmp:
        merge_hf(adapter_dir, training_dir(base), tmp, dtype=torch.float32)
    return Path(out)
