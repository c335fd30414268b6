"""Load base weights for training: dequantize a GGUF once into a safetensors folder.

transformers' GGUF loader dequantizes every tensor to float32, then marks the model as
"quantized with gguf" and refuses ``save_pretrained`` until that marker is cleared. The marker
is metadata only (the tensors are plain float32), so clearing it is safe.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path


def torch_env() -> None:
    """Thread settings that hold up on a small shared CPU box; the user's values win."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # PEFT still calls a transformers method that warns about its rename on every model
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*",
                            category=FutureWarning)


@contextlib.contextmanager
def quiet_load() -> Iterator[None]:
    """Hide transformers' per-tensor progress bar while a cached model loads in seconds."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def clear_gguf_marker(model) -> None:
    """Forget that a model came from a GGUF so transformers lets us save it."""
    model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("quantization_method", "_pre_quantization_dtype"):
        if hasattr(model, attr):
            delattr(model, attr)


def dequantize_gguf(gguf_path: str | Path, out_dir: str | Path) -> Path:
    """Load a GGUF into transformers (float32) and save model and tokenizer to ``out_dir``."""
    torch_env()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    out_dir = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    clear_gguf_marker(model)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
