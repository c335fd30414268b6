"""Registry entries from an adapter folder: ``locollm adapters register``.

Measured fields (base, quantization, rank, scores, improvement, size) are read from the folder's
``locollm.json`` and ``eval/*results.json``; written fields (version, authors, description,
tags, router keywords) come from the user or the existing entry. The improvement is computed
from the unrounded scores, in points (``"+60.0 pts"``), with the relative gain only when the
base is not near zero.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import AdapterError, LocollmError, Problem
from .meta import ADAPTERS_ROOT, load_meta, lora_gguf_path
from .registry import (
    RegistryEntry,
    _is_number,
    improvement,
    registry_path,
    validate_registry,
    write_entry,
)

EVAL_FIX = "run: locollm eval --adapter {d}"


# ----------------------------------------------------------------------- from an adapter folder
def read_score(path: Path, domain: str) -> float:
    """The ``score`` of an eval result JSON (``locollm eval`` writes these); for
    ``ood_results.json``, the adapter's score."""
    fix = EVAL_FIX.format(d=domain)
    if not path.exists():
        raise AdapterError("eval result missing", file=path, fix=fix)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data = data["adapter"] if "adapter" in data and "score" not in data else data
        score = data["score"] if "score" in data else data["correct"] / data["total"]
    except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
        raise AdapterError(f"unreadable eval result ({exc})", file=path, fix=fix) from exc
    if not _is_number(score) or not 0 <= score <= 1:
        raise AdapterError(f"score {score!r} is not between 0 and 1", file=path, fix=fix)
    return float(score)


def gguf_quantization(path: str | Path) -> str:
    """The quantization of a GGUF (``Q4_K_M``…), read from ``general.file_type`` in its header."""
    import gguf

    from ..gguf.header import read_keys

    file_type = read_keys(path, {"general.file_type"}).get("general.file_type")
    if file_type is None:
        return "unknown"
    return gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")


def served_quantization(folder: Path, base_model: str, fallback: str = "unknown") -> str:
    """The quantization of the base GGUF the adapter was evaluated on: recorded in
    eval/results.json by ``locollm eval``, else read from the resolved base's header."""
    from ..models import resolve

    try:
        recorded = json.loads((folder / "eval" / "results.json").read_text(encoding="utf-8"))
        quant = (recorded.get("base") or {}).get("quantization")
        if quant and recorded.get("runtime", "llama.cpp") == "llama.cpp":
            return str(quant)
    except (OSError, ValueError, AttributeError):
        pass
    try:
        base = resolve(base_model)
        return gguf_quantization(base.gguf) if base.gguf else "F32"
    except LocollmError:  # base not available here (offline hub id): keep what was written
        return fallback


def size_mb(folder: Path) -> float:
    """The adapter's size as the registry states it: its PEFT weights (else its LoRA GGUF)."""
    for path in (folder / "adapter_model.safetensors", lora_gguf_path(folder)):
        if path.exists():
            return round(path.stat().st_size / 1e6, 1)
    return 0.0


def entry_from_folder(folder: str | Path, existing: RegistryEntry | None = None,
                      **overrides: Any) -> RegistryEntry:
    """A registry entry from an adapter folder: ``locollm.json`` and ``eval/*results.json``.

    Measured fields (base model, quantization, rank, scores, improvement, size) are always
    read from the folder. Written fields (version, created, authors, description, tags,
    router keywords) come from ``overrides``, else ``existing``, else defaults.
    """
    folder = Path(folder)
    meta = load_meta(folder)
    domain = folder.resolve().name
    score = read_score(folder / "eval" / "results.json", domain)
    base_score = read_score(folder / "eval" / "base_results.json", domain)
    entry = existing or RegistryEntry(
        created=(meta.created or dt.date.today().isoformat())[:10], tags=[domain],
        router_keywords=[domain])
    quant = served_quantization(folder, meta.base_model, entry.quantization or "unknown")
    values = asdict(entry) | {k: v for k, v in overrides.items() if v not in (None, [], ())}
    values.update(base_model=meta.base_model, quantization=quant, lora_rank=meta.lora_rank,
                  benchmark_score=round(score, 4), base_model_score=round(base_score, 4),
                  improvement=improvement(score, base_score), size_mb=size_mb(folder))
    for key in ("authors", "tags", "router_keywords"):
        values[key] = list(values[key])
    return RegistryEntry(**values)


WRITTEN = ("version", "created", "authors", "description", "tags", "router_keywords")


def written_fields(path: Path, domain: str) -> RegistryEntry | None:
    """The written fields of an entry that does not validate (a stale measured field, say), so
    that refreshing it keeps its authors, description and keywords; None without an entry."""
    import yaml

    from .registry import _field_problem

    try:
        data = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get(domain)
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    if not isinstance(data, dict):
        return None
    good = {k: data[k] for k in WRITTEN if k in data and _field_problem(k, data[k]) is None}
    return RegistryEntry(**good) if good else None


@dataclass
class Registration:
    """What `locollm adapters register` wrote, and what the entry still lacks."""

    domain: str
    entry: RegistryEntry
    path: Path
    problems: list[Problem]


def register(adapter: str | Path, registry: str | Path | None = None,
             adapters_root: str | Path = ADAPTERS_ROOT, **overrides: Any) -> Registration:
    """Write or refresh the registry entry of an adapter folder (or a domain under adapters/).

    Args:
        adapter: folder or domain name.
        registry: registry file (default ``<adapters_root>/registry.yaml``).
        adapters_root: where domain names are looked up.
        **overrides: written fields to set: version, created, authors, description, tags,
            router_keywords.
    """
    from .meta import resolve_adapter

    folder = resolve_adapter(adapter, adapters_root)
    domain = folder.resolve().name
    path = Path(registry) if registry else registry_path(adapters_root)
    current, _ = validate_registry(path)
    existing = current.entries.get(domain) or written_fields(path, domain)
    entry = entry_from_folder(folder, existing, **overrides)
    write_entry(path, domain, entry)
    _, problems = validate_registry(path)
    return Registration(domain, entry, path, problems.get(domain, []))
