"""The adapter folder is the unit: PEFT files, LoRA GGUF, metadata, ``training/`` and ``eval/``.

``locollm.json`` holds what every command needs to use the adapter without asking again: the
base model id and sha256, architecture, rank, alpha, target modules, prompt format, stop
strings and the locollm version that wrote it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import AdapterError
from ..paths import atomic_write
from ..prompt import STOP_STRINGS, PromptFormat

ADAPTERS_ROOT = Path("adapters")
METADATA = "locollm.json"
LORA_GGUF = "adapter.gguf"
PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")


@dataclass
class AdapterMeta:
    """Self-description of an adapter folder."""

    name: str
    base_model: str
    base_sha256: str | None
    architecture: str
    lora_rank: int
    lora_alpha: int
    target_modules: list[str]
    prompt_format: str = "alpaca"
    stop: list[str] = field(default_factory=list)
    backend: str = "peft"
    locollm_version: str = __version__
    created: str = ""

    def fmt(self) -> PromptFormat:
        """The prompt format the adapter was trained with (default stops if none recorded)."""
        return PromptFormat(self.prompt_format, tuple(self.stop) or STOP_STRINGS)

    def save(self, folder: str | Path) -> Path:
        """Write ``locollm.json`` into ``folder`` atomically."""
        return atomic_write(Path(folder) / METADATA, json.dumps(asdict(self), indent=2) + "\n")


def load_meta(folder: str | Path) -> AdapterMeta:
    """Read an adapter folder's metadata, with a clear error when it is not an adapter."""
    folder = Path(folder)
    path = folder / METADATA
    if not folder.is_dir():
        raise AdapterError("adapter folder not found", file=folder,
                           fix="train one with `locollm train` or check the name")
    if not path.exists():
        raise AdapterError(f"no {METADATA}: not a locollm adapter folder", file=folder,
                           fix="train it with `locollm train` (which writes the metadata)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return AdapterMeta(**data)
    except (ValueError, TypeError) as exc:
        raise AdapterError(f"unreadable metadata ({exc})", file=path) from exc


def resolve_adapter(name_or_path: str | Path, adapters_root: str | Path = "adapters") -> Path:
    """An adapter given as a folder path or as a domain name under ``adapters/``."""
    path = Path(name_or_path)
    if (path / METADATA).exists():
        return path
    candidate = Path(adapters_root) / str(name_or_path)
    if (candidate / METADATA).exists():
        return candidate
    if path.is_dir() or candidate.is_dir():
        found = path if path.is_dir() else candidate
        raise AdapterError(f"no {METADATA}: the adapter is not trained yet", file=found,
                           fix=f"run `make train DOMAIN={found.name}`")
    raise AdapterError(f"adapter {str(name_or_path)!r} not found", file=candidate,
                       fix="pass a folder or a domain name under adapters/")


def lora_gguf_path(folder: str | Path) -> Path:
    """Where an adapter folder keeps its LoRA GGUF."""
    return Path(folder) / LORA_GGUF


def default_instruction(folder: str | Path) -> str | None:
    """The instruction most of an adapter's training data used, if one dominates.

    A bare question sent to such an adapter becomes the input of that instruction, which is
    the shape the adapter was trained on.
    """
    from collections import Counter

    from ..data.jsonl import read_jsonl

    dataset = Path(folder) / "training" / "dataset.jsonl"
    if not dataset.exists():
        return None
    counts = Counter(e.instruction for e in read_jsonl(dataset).examples)
    if not counts:
        return None
    top, n = counts.most_common(1)[0]
    return top if n * 2 > sum(counts.values()) else None


def trained_adapters(root: str | Path = ADAPTERS_ROOT) -> dict[str, Path]:
    """Adapter folders under ``root`` that hold trained metadata, by domain."""
    root = Path(root)
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir())
            if p.is_dir() and not p.name.startswith(".") and (p / METADATA).exists()}
