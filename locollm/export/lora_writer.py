"""Write a PEFT LoRA adapter as a llama.cpp LoRA GGUF (``general.type = adapter``).

llama.cpp expects, per adapted weight ``W`` (out x in), ``<name>.weight.lora_a`` with the
shape of PEFT's ``lora_A`` (r x in) and ``<name>.weight.lora_b`` with PEFT's ``lora_B``
(out x r), and the scale given by ``adapter.lora.alpha / r``. Both are stored as float32:
they are a few MB and exactness matters more than size here.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from ..errors import AdapterError
from ..gguf.names import lora_tensor_name
from ..paths import atomic_path


def write_lora_gguf(tensors: dict[str, np.ndarray], out: str | Path, *, arch: str,
                    n_layers: int, alpha: float, name: str = "locollm-adapter") -> Path:
    """Write LoRA tensors (PEFT names, numpy arrays) to a LoRA GGUF atomically.

    Args:
        tensors: ``lora_A`` / ``lora_B`` arrays keyed by their PEFT names.
        out: the ``.gguf`` path to write.
        arch: the base GGUF's ``general.architecture`` (e.g. ``gemma3``).
        n_layers: the base's block count.
        alpha: LoRA alpha; llama.cpp scales by ``alpha / rank``.
        name: ``general.name`` stored in the file.
    """
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        gname, part = lora_tensor_name(key, arch, n_layers)
        pairs.setdefault(gname[: -len(".lora_a")], {})[part] = value
    incomplete = [k for k, v in pairs.items() if set(v) != {"a", "b"}]
    if incomplete:
        raise AdapterError(f"LoRA tensors without their A/B partner: {incomplete[:3]}")
    with atomic_path(out) as tmp:
        writer = gguf.GGUFWriter(str(tmp), arch)
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(alpha))
        writer.add_name(name)
        for base in sorted(pairs):
            for part in ("a", "b"):
                array = np.ascontiguousarray(pairs[base][part], dtype=np.float32)
                writer.add_tensor(f"{base}.lora_{part}", array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return Path(out)
