"""Read a PEFT LoRA folder as plain (A, B) pairs whose scale is llama.cpp's ``alpha / rank``.

llama.cpp applies one ``adapter.lora.alpha`` per file and scales each pair by ``alpha / r`` of
that pair. PEFT allows more: ``use_rslora`` (``alpha / sqrt(r)``), and per-module ranks and
alphas (``rank_pattern``, ``alpha_pattern``). Folding each pair's real scale into its B matrix
makes every such adapter exact under llama.cpp's rule. What a LoRA GGUF cannot hold at all
(DoRA magnitudes, fully trained ``modules_to_save``, biases) is an error that points to a
merged export instead.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AdapterError

_PREFIX = re.compile(r"^(base_model\.model\.)+")
_PAIR = re.compile(r"\.lora_(A|B|embedding_A|embedding_B)(\.default)?(\.weight)?$")


@dataclass
class PeftLora:
    """A PEFT adapter's LoRA pairs, scaled for llama.cpp."""

    # module name in the base model (``model.layers.0.self_attn.q_proj``) -> (A, B)
    pairs: dict[str, tuple[np.ndarray, np.ndarray]]
    # the file's adapter.lora.alpha; each pair's scale is alpha / (its rank)
    alpha: float
    # modules adapted through lora_embedding_A/B (token embeddings), which need llama.cpp's
    # converter (their A is stored transposed)
    embeddings: set[str]
    # the PEFT config as read (adapter_config.json)
    config: dict


def _pattern(patterns: dict, module: str, default):
    """PEFT's per-module override (``get_pattern_key``): a key matching the module's tail."""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def _check_config(config: dict, folder: Path) -> None:
    problems = []
    if config.get("peft_type", "LORA") != "LORA":
        problems.append(f"peft_type is {config.get('peft_type')}, not LORA")
    if config.get("use_dora"):
        problems.append("a DoRA adapter (use_dora) has magnitude vectors llama.cpp cannot apply")
    if config.get("modules_to_save"):
        problems.append(f"modules_to_save {config['modules_to_save']} are fully trained "
                        "modules, which a LoRA GGUF cannot carry")
    if problems:
        raise AdapterError("this adapter cannot become a LoRA GGUF: " + "; ".join(problems),
                           file=folder / "adapter_config.json",
                           fix="export it merged into the base instead (locollm export "
                               "--merged, or --merged-hf)")


def read_peft_lora(folder: str | Path) -> PeftLora:
    """The folder's LoRA pairs with each pair's PEFT scale folded into B.

    Raises:
        AdapterError: files missing, tensors that are not LoRA pairs, or a kind of adapter a
            LoRA GGUF cannot hold.
    """
    from safetensors.numpy import load_file

    folder = Path(folder)
    config_file, weights = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    for path in (config_file, weights):
        if not path.exists():
            raise AdapterError(f"{path.name} is missing", file=folder,
                               fix="train the adapter first (locollm train)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise AdapterError(f"unreadable PEFT config ({exc})", file=config_file) from exc
    _check_config(config, folder)
    parts: dict[str, dict[str, np.ndarray]] = {}
    strays: list[str] = []
    embeddings: set[str] = set()
    for key, value in load_file(weights).items():
        if key.endswith(".base_layer.weight"):
            continue  # PEFT saves the (unchanged) base embedding next to an embedding LoRA
        match = _PAIR.search(key)
        if not match:
            strays.append(key)
            continue
        module = _PREFIX.sub("", key[: match.start()])
        kind = match.group(1)
        if kind.startswith("embedding_"):
            embeddings.add(module)
        parts.setdefault(module, {})[kind[-1]] = value
    if strays:
        raise AdapterError(f"tensors that are not LoRA pairs: {strays[:3]}", file=weights,
                           fix="export it merged into the base instead (locollm export "
                               "--merged); a LoRA GGUF holds A/B pairs only")
    unpaired = sorted(m for m, p in parts.items() if set(p) != {"A", "B"})
    if unpaired:
        raise AdapterError(f"LoRA tensors without their A/B partner: {unpaired[:3]}",
                           file=weights, fix="re-save the adapter; the file is incomplete")
    alpha = float(config.get("lora_alpha", config.get("r", 8)))
    rslora = bool(config.get("use_rslora"))
    pairs = {}
    for module, p in parts.items():
        a, b = p["A"], p["B"]
        rank = a.shape[0]  # rank_pattern needs no lookup: A is (r x in), embeddings included
        module_alpha = float(_pattern(config.get("alpha_pattern") or {}, module, alpha))
        scale = module_alpha / (math.sqrt(rank) if rslora else rank)
        factor = scale * rank / alpha  # llama.cpp scales by alpha / rank
        if not math.isclose(factor, 1.0, rel_tol=1e-9):
            b = b.astype(np.float32) * np.float32(factor)
        pairs[module] = (a, b)
    return PeftLora(pairs, alpha, embeddings, config)
