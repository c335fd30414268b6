"""Read chosen key/values from a GGUF header without parsing the rest.

``gguf.GGUFReader`` parses every key first, including a 262k-entry vocabulary (seconds); most
callers want two or three scalar keys, which sit before the vocabulary.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

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


def read_keys(path: str | Path, keys: set[str] | frozenset[str]) -> dict[str, Any]:
    """Values of ``keys`` found in the GGUF header at ``path`` (absent keys are left out).

    Raises:
        AdapterError: the file is not a GGUF or its header is cut short.
    """
    found: dict[str, Any] = {}
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"GGUF":
                raise AdapterError("not a GGUF file", file=path)
            _version, _tensors, n_kv = _read(fh, "I"), _read(fh, "Q"), _read(fh, "Q")
            for _ in range(n_kv):
                key = fh.read(_read(fh, "Q")).decode("utf-8", "replace")
                vtype = _read(fh, "I")
                value = _value(fh, vtype, key in keys)
                if key in keys:
                    found[key] = value
                    if len(found) == len(keys):
                        break
    except (EOFError, ValueError, struct.error, UnicodeDecodeError) as exc:
        raise AdapterError(f"GGUF header is damaged or cut short ({exc or 'end of file'})",
                           file=path, fix="re-export or re-download the file") from exc
    except OSError as exc:
        raise AdapterError(f"cannot read the file ({exc.strerror})", file=path) from exc
    return found
