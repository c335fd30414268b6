"""Open an engine for a base model and a set of adapter folders, checking they belong together."""

from __future__ import annotations

import atexit
import weakref
from pathlib import Path

from ..adapter import AdapterMeta, load_meta, lora_gguf_path
from ..errors import AdapterError
from ..models import BaseModel, resolve
from .engine import Engine, EngineConfig

_OPEN: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_all() -> None:  # llama-cpp-python's own __del__ fails at interpreter shutdown
    for engine in list(_OPEN):
        engine.close()


def open_engine(base_model: str | None, adapter_dirs: list[Path] | None = None,
                config: EngineConfig | None = None) -> tuple[Engine, dict[str, AdapterMeta]]:
    """Load the base once and every adapter's LoRA GGUF (exporting it if missing).

    The base comes from ``base_model`` or else from the first adapter's metadata; every adapter
    must have been trained on a base with the same sha256.
    """
    metas = {Path(d): load_meta(d) for d in adapter_dirs or []}
    wanted = base_model or next((m.base_model for m in metas.values()), None)
    base: BaseModel = resolve(wanted)
    if base.gguf is None:
        raise AdapterError(f"base {base.name!r} has no GGUF to serve",
                           fix="export a merged GGUF and pass it with --base-model")
    for folder, meta in metas.items():
        if meta.base_sha256 and meta.base_sha256 != base.sha256:
            raise AdapterError(f"adapter {meta.name!r} was trained on another base "
                               f"({meta.base_model}, sha256 {meta.base_sha256[:12]}…)",
                               file=folder, fix="use its base model, or retrain")
    engine = Engine(base.gguf, config)
    _OPEN.add(engine)
    by_name = {}
    for folder, meta in metas.items():
        gguf_file = lora_gguf_path(folder)
        if not gguf_file.exists():
            from ..export import export_lora_gguf

            export_lora_gguf(folder)
        engine.load_adapter(meta.name, gguf_file)
        by_name[meta.name] = meta
    return engine, by_name
