"""Read chosen key/values, or the tensor layout, from a GGUF header without parsing the rest.

``gguf.GGUFReader`` parses every key first, including a 262k-entry vocabulary (seconds in
Python) and maps the tensor data; most callers want two or three scalar keys, which sit
before the vocabulary, or the tensor names and shapes that follow the keys.
"""

from __future__ import annotations

import contextlib
import functools
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import AdapterError

# GGUF value types: fixed sizes of the scalar ones (8 = string, 9 = array)
_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_FORMATS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
            12: "d"}


def _read(fh, fmt: str):
    size = struct.calcsize("<" + fmt)
    data = fh.read(size)
    if len(data) != size:
        raise EOFError
    return struct.unpack("<" + fmt, data)[0]


def _value(fh, vtype: int, keep: bool) -> Any:
    if vtype == 8:
        length = _read(fh, "Q")
        if keep:
            return fh.read(length).decode("utf-8", "replace")
        fh.seek(length, 1)
        return None
    if vtype == 9:
        etype, count = _read(fh, "I"), _read(fh, "Q")
        if etype in _SIZES and not keep:
            fh.seek(_SIZES[etype] * count, 1)
            return None
        values = [_value(fh, etype, keep) for _ in range(count)]
        return values if keep else None
    if vtype not in _FORMATS:
        raise ValueError(f"unknown GGUF value type {vtype}")
    if keep:
        return _read(fh, _FORMATS[vtype])
    fh.seek(_SIZES[vtype], 1)
    return None


@contextlib.contextmanager
def _header(path: str | Path) -> Iterator[tuple[BinaryIO, int, int]]:
    """The open file past its magic and counts: (file, tensor count, key/value count).

    Raises:
        AdapterError: not a GGUF, or the header is cut short or damaged.
    """
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"GGUF":
                raise AdapterError("not a GGUF file", file=path)
            _version, n_tensors, n_kv = _read(fh, "I"), _read(fh, "Q"), _read(fh, "Q")
            yield fh, n_tensors, n_kv
    except (EOFError, ValueError, struct.error, UnicodeDecodeError) as exc:
        raise AdapterError(f"GGUF header is damaged or cut short ({exc or 'end of file'})",
                           file=path, fix="re-export or re-download the file") from exc
    except OSError as exc:
        raise AdapterError(f"cannot read the file ({exc.strerror})", file=path) from exc


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the GGUF header lists it."""

    name: str
    dims: tuple[int, ...]  # ggml's ne: innermost first, a weight of out x in reads (in, out)
    type: int  # ggml type (gguf.GGMLQuantizationType)
    offset: int  # from the start of the data section


@dataclass(frozen=True)
class Layout:
    """Where a GGUF's parts are: enough to rewrite tensors and copy everything else."""

    header_end: int  # byte offset where the key/values end and the tensor infos begin
    tensors: tuple[TensorInfo, ...]
    data_start: int  # byte offset of the (aligned) data section
    alignment: int


def read_layout(path: str | Path) -> Layout:
    """The tensor infos and section offsets of a GGUF, from its header alone.

    Raises:
        AdapterError: the file is not a GGUF or its header is cut short.
    """
    try:
        stat = Path(path).stat()
    except OSError as exc:
        raise AdapterError(f"cannot read the file ({exc.strerror})", file=path) from exc
    return _layout(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _layout(path: str, _size: int, _mtime: int) -> Layout:
    """Cached per file version: serving several adapters reads the base's header once."""
    alignment, tensors = 32, []
    with _header(path) as (fh, n_tensors, n_kv):
        for _ in range(n_kv):
            key = fh.read(_read(fh, "Q"))
            value = _value(fh, _read(fh, "I"), key == b"general.alignment")
            if value is not None:
                alignment = int(value)
        header_end = fh.tell()
        for _ in range(n_tensors):
            name = fh.read(_read(fh, "Q")).decode("utf-8", "replace")
            dims = tuple(_read(fh, "Q") for _ in range(_read(fh, "I")))
            tensors.append(TensorInfo(name, dims, _read(fh, "I"), _read(fh, "Q")))
        data_start = -(-fh.tell() // alignment) * alignment
    return Layout(header_end, tuple(tensors), data_start, alignment)


def read_tensor_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's name and shape as llama.cpp lists it (``ne``: innermost dimension
    first, so a weight of ``out x in`` reads ``(in, out)``), from the header alone."""
    return {t.name: t.dims for t in read_layout(path).tensors}


def read_keys(path: str | Path, keys: set[str] | frozenset[str]) -> dict[str, Any]:
    """Values of ``keys`` found in the GGUF header at ``path`` (absent keys are left out).

    Raises:
        AdapterError: the file is not a GGUF or its header is cut short.
    """
    found: dict[str, Any] = {}
    with _header(path) as (fh, _tensors, n_kv):
        for _ in range(n_kv):
            key = fh.read(_read(fh, "Q")).decode("utf-8", "replace")
            value = _value(fh, _read(fh, "I"), key in keys)
            if key in keys:
                found[key] = value
                if len(found) == len(keys):
                    break
    return found
