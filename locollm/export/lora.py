"""Export an adapter folder's PEFT weights as a LoRA GGUF, for any base model.

A LoRA GGUF needs of its base only the architecture and shapes, which the base's GGUF header
or its ``config.json`` gives: no base GGUF is needed, and a hub base's weights are never
downloaded for it. Two writers make the same file:

* architectures in :data:`locollm.gguf.names.HF_ARCHITECTURES` (Llama, Mistral, Qwen 2/3,
  Gemma 1/2/3, Phi-3) are written in-process (:mod:`.lora_writer`): a rank-16 adapter in a
  fraction of a second (``bench/export_speed.py``);
* every other architecture goes through llama.cpp's own ``convert_lora_to_gguf.py``
  (:mod:`.converter`), which applies that architecture's tensor transforms to A and B.

Either way the PEFT scales are first folded into B (:mod:`.peft_lora`). The base an adapter
names must be the file it was trained on (same sha256), which :func:`base_for` checks.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..adapter.meta import AdapterMeta, load_meta, lora_gguf_path
from ..errors import AdapterError
from ..models import EMBEDDED, BaseModel, base_config_dir, resolve
from .peft_lora import PeftLora, read_peft_lora

WRITERS = ("auto", "locollm", "llama.cpp")


def base_for(meta: AdapterMeta, base_model: str | None = None) -> BaseModel:
    """The base an adapter was trained on; a different file (sha256) is an error."""
    base = resolve(base_model or meta.base_model)
    if meta.base_sha256 and base.sha256 and base.sha256 != meta.base_sha256:
        raise AdapterError(
            f"adapter {meta.name!r} was trained on base sha256 {meta.base_sha256[:12]}…, "
            f"this base is {base.sha256[:12]}…", fix="retrain the adapter on this base model")
    return base


@dataclass(frozen=True)
class LoraBase:
    """What a LoRA GGUF needs to know about its base."""

    # llama.cpp architecture when locollm's own writer covers it; None: llama.cpp's converter
    arch: str | None
    n_layers: int
    # (attention heads, key/value heads), for the q/k row order of ROPE_PERMUTED archs
    heads: tuple[int, int]
    # the base as the adapter names it (to find a config.json for llama.cpp's converter)
    name: str


def lora_base(meta: AdapterMeta) -> LoraBase:
    """Architecture, layers and heads of an adapter's base, from its GGUF header or its
    ``config.json`` (a hub base: that file alone)."""
    from ..gguf.names import HF_ARCHITECTURES, read_info

    fast = set(HF_ARCHITECTURES.values())
    if meta.base_model in EMBEDDED or meta.base_model.endswith(".gguf"):
        info = read_info(base_for(meta).gguf)
        arch = info.architecture if info.architecture in fast else None
        return LoraBase(arch, info.n_layers, (info.n_head, info.n_head_kv), meta.base_model)
    folder = base_config_dir(meta.base_model)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    arch = HF_ARCHITECTURES.get((config.get("architectures") or [""])[0])
    heads = int(config.get("num_attention_heads") or 0)
    return LoraBase(arch, int(config.get("num_hidden_layers") or 0),
                    (heads, int(config.get("num_key_value_heads") or heads)), meta.base_model)


def _config_folder(name: str) -> Path:
    """A folder with the base's config.json, for llama.cpp's converter."""
    folder = base_config_dir(name)
    if folder is not None:
        return folder
    from ..models import training_dir

    return training_dir(resolve(name))  # a GGUF base: its dequantized folder has one


def _with_llama_cpp(lora: PeftLora, base: LoraBase, out: Path, name: str) -> Path:
    """Write the LoRA GGUF with llama.cpp's convert_lora_to_gguf.py."""
    import numpy as np
    from safetensors.numpy import save_file

    from ..paths import atomic_path
    from .converter import run_converter

    tensors = {}
    for module, (a, b) in lora.pairs.items():
        kind = "lora_embedding_" if module in lora.embeddings else "lora_"
        suffix = "" if module in lora.embeddings else ".weight"
        tensors[f"base_model.model.{module}.{kind}A{suffix}"] = np.ascontiguousarray(a)
        tensors[f"base_model.model.{module}.{kind}B{suffix}"] = np.ascontiguousarray(b)
    # the scales are folded into B already: one alpha, no patterns
    config = {**lora.config, "lora_alpha": lora.alpha, "alpha_pattern": {},
              "rank_pattern": {}, "use_rslora": False}
    with tempfile.TemporaryDirectory(prefix="locollm-lora-") as tmp:
        folder = Path(tmp) / name
        folder.mkdir()
        save_file(tensors, str(folder / "adapter_model.safetensors"))
        (folder / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
        with atomic_path(out) as dest:
            run_converter("lora", ["--base", str(_config_folder(base.name)), "--outfile",
                                   str(dest), "--outtype", "f32", str(folder)], what=folder)
    return out


def export_lora_gguf(adapter_dir: str | Path, out: str | Path | None = None, *,
                     writer: str = "auto") -> Path:
    """Write ``adapter.gguf`` (LoRA-only, float32) from the folder's PEFT weights.

    Args:
        adapter_dir: the adapter folder.
        out: the file to write (default ``ADAPTER/adapter.gguf``).
        writer: ``auto`` (locollm's writer where it covers the architecture, else llama.cpp's
            converter), or either one by name.
    """
    from .lora_writer import write_lora_pairs

    if writer not in WRITERS:
        raise AdapterError(f"unknown LoRA writer {writer!r}", fix=f"use one of {WRITERS}")
    adapter_dir = Path(adapter_dir)
    meta = load_meta(adapter_dir)
    lora = read_peft_lora(adapter_dir)
    base = lora_base(meta)
    out = Path(out or lora_gguf_path(adapter_dir))
    from ..gguf.names import ROPE_PERMUTED

    # locollm's writer: a covered architecture, no embedding LoRA, and the head counts where
    # q/k rows must be permuted
    own = (base.arch is not None and not lora.embeddings
           and (base.arch not in ROPE_PERMUTED or base.heads[0] > 0))
    if writer == "llama.cpp" or (writer == "auto" and not own):
        return _with_llama_cpp(lora, base, out, meta.name)
    if not own:
        raise AdapterError("locollm's LoRA writer does not cover this base's architecture "
                           "or adapted modules", file=adapter_dir, fix="use writer='auto'")
    return write_lora_pairs(lora.pairs, out, arch=base.arch, n_layers=base.n_layers,
                            alpha=lora.alpha, name=meta.name, heads=base.heads)


def lora_for(adapter_dir: str | Path, base_gguf: str | Path) -> Path:
    """The adapter's LoRA GGUF (exported first if missing), checked to fit ``base_gguf``.

    Raises:
        AdapterError: it does not fit (another architecture or other shapes).
    """
    from ..gguf.compat import check_lora_fits

    path = lora_gguf_path(adapter_dir)
    if not path.exists():
        export_lora_gguf(adapter_dir)
    check_lora_fits(base_gguf, path)
    return path
