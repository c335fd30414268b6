"""What a result rests on, recorded in it: the base model and the adapter, by their hashes.

The base is named by the sha256 of its GGUF (the weights training was derived from, too) and the
quantization in that GGUF's header; the adapter by the sha256 of its LoRA GGUF (what llama.cpp
serves) and of its PEFT weights (what training wrote and the repository ships).
"""

from __future__ import annotations

from pathlib import Path

from ..adapter.meta import lora_gguf_path
from ..models import BaseModel
from ..paths import sha256_file

PEFT_WEIGHTS = "adapter_model.safetensors"


def base_record(base: BaseModel, runtime: str, model_dir: Path | None = None) -> dict:
    """The base model as a result records it."""
    record = {"name": base.name, "file": str(base.gguf or base.hf_dir or ""),
              "sha256": base.sha256, "quantization": None,
              "precision": "float32" if runtime == "transformers" else "gguf"}
    if base.gguf is not None:
        from ..adapter.register import gguf_quantization

        record["quantization"] = gguf_quantization(base.gguf)
    if model_dir is not None:
        record["training_weights"] = str(model_dir)
    return record


def adapter_hashes(folder: str | Path) -> dict[str, str | None]:
    """sha256 of an adapter folder's LoRA GGUF and PEFT weights (None where a file is absent)."""
    folder = Path(folder)
    gguf, peft = lora_gguf_path(folder), folder / PEFT_WEIGHTS
    return {"gguf_sha256": sha256_file(gguf) if gguf.exists() else None,
            "peft_sha256": sha256_file(peft) if peft.exists() else None}


def adapter_record(name: str, folder: str | Path) -> dict:
    """The adapter as a result records it."""
    return {"name": name, "folder": str(folder)} | adapter_hashes(folder)


def same_adapter(recorded: dict | None, folder: str | Path) -> bool | None:
    """Whether a result's adapter is the folder's adapter now (None: nothing to compare)."""
    if not recorded:
        return None
    now = adapter_hashes(folder)
    # the PEFT weights are the source (the GGUF is re-exported from them, and not shipped)
    for key in ("peft_sha256", "gguf_sha256"):
        if recorded.get(key) and now[key]:
            return recorded[key] == now[key]
    return None
