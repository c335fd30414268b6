"""Hugging Face model → GGUF: weights, tokenizer, special tokens and chat template, quantized.

llama.cpp's own converter (:mod:`.converter`) writes the GGUF in the model's own precision
(float32, bfloat16 or float16, whichever its weights are in), then llama.cpp's quantizer
(:func:`locollm.runtime.engine.quantize_model`) brings it to the chosen type. Converting at the
source precision first means a quantized file is quantized once, from the real weights.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFoundError
from .converter import run_converter

QUANTS = ("q4_k_m", "q5_k_m", "q8_0", "f16", "f32")
# A model's weight dtype (config.json) -> the converter's output type that keeps it exactly.
_SOURCE_TYPES = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}


def source_type(model_dir: Path) -> str:
    """The converter output type that keeps ``model_dir``'s weights as they are."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    dtype = config.get("dtype") or config.get("torch_dtype")
    if dtype is None and isinstance(config.get("text_config"), dict):
        dtype = config["text_config"].get("dtype") or config["text_config"].get("torch_dtype")
    return _SOURCE_TYPES.get(str(dtype).removeprefix("torch."), "f32")


def model_folder(src: str | Path) -> tuple[Path, str]:
    """The Hugging Face folder of ``src`` (a folder, or a hub id) and a display name for it.

    Raises:
        ModelNotFoundError: ``src`` is a GGUF already, or not a Hugging Face model.
    """
    from ..models import resolve

    base = resolve(src)
    if base.hf_dir is None:
        raise ModelNotFoundError(f"{src!r} is a GGUF already, nothing to convert",
                                 file=base.gguf, fix="use the file as it is (or pass "
                                 "a Hugging Face model folder or hub id)")
    name = str(src).rstrip("/").split("/")[-1] if base.source == "hub" else base.hf_dir.name
    return base.hf_dir, name


def convert_folder(model_dir: Path, out: Path, quant: str = "q8_0", *,
                   name: str | None = None, pre_tokenizer: str | None = None) -> Path:
    """Convert a Hugging Face folder to a GGUF of type ``quant`` at ``out`` (atomically).

    Args:
        model_dir: folder with config.json, the safetensors weights and the tokenizer files.
        out: the ``.gguf`` to write.
        quant: ``q4_k_m``, ``q5_k_m``, ``q8_0``, ``f16`` or ``f32``.
        name: ``general.name`` of the model (default: the folder's name).
        pre_tokenizer: for a BPE tokenizer llama.cpp does not recognise (see
            :func:`.converter.run_converter`).
    """
    from ..errors import ConfigError
    from ..paths import atomic_path
    from ..runtime.engine import quantize_model

    if quant not in QUANTS:
        raise ConfigError(f"unknown quantization {quant!r}", fix=f"use one of {QUANTS}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    first = source_type(model_dir)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}.") as tmp:
        raw = Path(tmp) / f"model-{first}.gguf"
        run_converter("model", [str(model_dir), "--outfile", str(raw), "--outtype", first,
                                "--model-name", name or model_dir.name],
                      pre_tokenizer=pre_tokenizer, what=model_dir)
        if quant == first:
            with atomic_path(out) as final:
                os.replace(raw, final)
            return out
        return quantize_model(raw, out, quant)


@dataclass
class Conversion:
    """A finished conversion and, when asked for, its checks."""

    path: Path  # the GGUF written
    seconds: float  # conversion and quantization time
    agreement: object | None = None  # verify.Agreement of the GGUF against transformers
    stops: object | None = None  # verify.StopCheck: generation ends at an answer's end


def convert_model(src: str | Path, out: str | Path | None = None, quant: str = "q8_0", *,
                  pre_tokenizer: str | None = None, verify: bool = False) -> Conversion:
    """``locollm models convert``: a Hugging Face folder or hub id to a quantized GGUF.

    Without ``out`` the file goes to the model cache, where serving an adapter trained on
    this base finds it (:func:`locollm.models.serving_gguf`). With ``verify`` the GGUF is
    compared with the model in transformers and checked to stop generating
    (:mod:`.verify`; a failure raises :class:`~locollm.errors.CheckFailed`).
    """
    import time

    from ..models import converted_path

    model_dir, name = model_folder(src)
    target = Path(out) if out else converted_path(model_dir, quant)
    start = time.perf_counter()
    path = convert_folder(model_dir, target, quant, name=name, pre_tokenizer=pre_tokenizer)
    result = Conversion(path, time.perf_counter() - start)
    if verify:
        from .verify import check_stops, verify_base

        result.agreement = verify_base(model_dir, path)
        result.stops = check_stops(path)
    return result


def recorded_pre_tokenizer(model_dir: Path) -> str | None:
    """The pre-tokenizer an earlier conversion of ``model_dir`` in the model cache recorded
    (so a merge of a base converted with ``--pre-tokenizer`` converts the same way)."""
    from ..gguf.header import read_keys
    from ..models import converted_path

    for quant in QUANTS:
        path = converted_path(model_dir, quant)
        if path.exists():
            return read_keys(path, {"tokenizer.ggml.pre"}).get("tokenizer.ggml.pre")
    return None
