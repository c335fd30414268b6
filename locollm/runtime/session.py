"""Open an engine for a base model and a set of adapter folders, checking they belong together.

``open_runtime`` adds what chat and the server share: adapter folders by name, prompt formats,
and the keyword router over the registry.
"""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..adapter.meta import (
    AdapterMeta,
    default_instruction,
    load_meta,
    resolve_adapter,
)
from ..errors import AdapterError
from ..models import DEFAULT_MODEL, BaseModel, resolve
from ..prompt import PromptFormat
from .engine import Engine, EngineConfig

if TYPE_CHECKING:
    from .router import Router

_OPEN: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_all() -> None:  # llama-cpp-python's own __del__ fails at interpreter shutdown
    for engine in list(_OPEN):
        engine.close()


def open_engine(base_model: str | None, adapter_dirs: list[Path] | None = None,
                config: EngineConfig | None = None) -> tuple[Engine, dict[str, AdapterMeta]]:
    """Load the base once and every adapter's LoRA GGUF (exporting it if missing).

    The base comes from ``base_model`` or else from the first adapter's metadata; every adapter
    must have been trained on a base with the same sha256, and each LoRA GGUF must fit the
    base GGUF (architecture and shapes) before llama.cpp loads anything.
    """
    from ..export.lora import lora_for
    from ..models import serving_gguf

    metas = {Path(d): load_meta(d) for d in adapter_dirs or []}
    wanted = base_model or next((m.base_model for m in metas.values()), None)
    base: BaseModel = resolve(wanted)
    base_gguf = serving_gguf(base)  # a Hugging Face base: its conversion, made once
    for folder, meta in metas.items():
        if meta.base_sha256 and meta.base_sha256 != base.sha256:
            raise AdapterError(f"adapter {meta.name!r} was trained on another base "
                               f"({meta.base_model}, sha256 {meta.base_sha256[:12]}…)",
                               file=folder, fix="use its base model, or retrain")
    loras = {folder: lora_for(folder, base_gguf) for folder in metas}  # exported, checked
    engine = Engine(base_gguf, config)
    _OPEN.add(engine)
    by_name = {}
    for folder, meta in metas.items():
        engine.load_adapter(meta.name, loras[folder])
        by_name[meta.name] = meta
    return engine, by_name


@dataclass
class Runtime:
    """An engine with its adapters, their folders and the keyword router: what chat and the
    server share."""

    engine: Engine
    base_name: str  # the id clients use for the bare base
    metas: dict[str, AdapterMeta]
    folders: dict[str, Path]
    router: Router
    # instruction an adapter was trained with, so a bare question becomes its input
    instructions: dict[str, str | None] = field(default_factory=dict)
    router_name: str = "keywords"  # which router "auto" uses (keywords or classifier)

    def prompt_format(self, adapter: str | None) -> PromptFormat:
        """The prompt format of ``adapter`` (None: the base's default)."""
        meta = self.metas.get(adapter) if adapter else None
        if meta is None:
            return PromptFormat()
        return meta.fmt()

    def close(self) -> None:
        """Free the engine."""
        self.engine.close()


def open_runtime(adapters: list[str | Path] | None = None, *, base_model: str | None = None,
                 registry: str | Path | None = None, adapters_root: str | Path = "adapters",
                 instruction_for: Callable[[Path], str | None] | None = None,
                 config: EngineConfig | None = None, router: str | None = None) -> Runtime:
    """Open the base once with ``adapters`` (names or folders; None: every trained adapter
    under ``adapters_root``), and the ``router`` for "auto" (keywords or classifier; None:
    the default, see :func:`locollm.runtime.router.default_router`)."""
    from ..adapter.meta import trained_adapters
    from ..adapter.registry import load_registry, registry_path
    from .router import default_router, make_router

    root = Path(adapters_root)
    if adapters is None:
        dirs = list(trained_adapters(root).values())
    else:
        dirs = list(dict.fromkeys(resolve_adapter(a, root).resolve() for a in adapters))
    names: dict[str, Path] = {}
    for folder in dirs:
        name = load_meta(folder).name
        if name in names:
            raise AdapterError(f"two adapters are named {name!r}", file=folder,
                               fix=f"serve only one of {names[name]} and {folder}")
        names[name] = Path(folder)
    reg = load_registry(registry or registry_path(root))  # fail before loading the model
    engine, metas = open_engine(base_model, dirs, config)
    wanted = str(base_model or next((m.base_model for m in metas.values()), DEFAULT_MODEL))
    base_name = Path(wanted).stem if wanted.endswith(".gguf") else wanted
    instruction_for = instruction_for or default_instruction
    instructions = {n: instruction_for(f) for n, f in names.items()}
    kind = router or default_router(names)
    return Runtime(engine, base_name, metas, names, make_router(kind, reg, names),
                   instructions, kind)
