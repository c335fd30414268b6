"""Does a LoRA GGUF fit a base GGUF? Checked from the two headers before llama.cpp loads either.

llama.cpp itself only finds out while loading, and a LoRA made for another model can be
rejected with a one-line log or, for some mismatches, load and produce garbage. This check
compares what both files say: the architecture, and for every adapted tensor that the base
has it, with the input width of A and the output width of B matching the base weight.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import AdapterError, Problem
from .header import read_keys, read_tensor_shapes


def check_lora_fits(base_gguf: str | Path, lora_gguf: str | Path) -> None:
    """Raise :class:`AdapterError` listing every way ``lora_gguf`` does not fit ``base_gguf``.

    Raises:
        AdapterError: not an adapter, another architecture, tensors the base lacks, or shapes
            that differ (each mismatch is one of the error's problems).
    """
    keys = {"general.architecture", "general.type", "general.name"}
    base, lora = read_keys(base_gguf, keys), read_keys(lora_gguf, keys)
    if lora.get("general.type") != "adapter":
        raise AdapterError("this GGUF is a model, not a LoRA adapter", file=lora_gguf)
    if base.get("general.type", "model") == "adapter":
        raise AdapterError("the base model given is a LoRA adapter, not a model",
                           file=base_gguf, fix="pass the base model's GGUF")
    if base.get("general.architecture") != lora.get("general.architecture"):
        raise AdapterError(
            f"the adapter is for architecture {lora.get('general.architecture')!r}, the base "
            f"{Path(base_gguf).name} is {base.get('general.architecture')!r}", file=lora_gguf,
            fix="serve it with the base it was trained on (or a conversion of it)")
    base_shapes, lora_shapes = read_tensor_shapes(base_gguf), read_tensor_shapes(lora_gguf)
    problems = []
    for name, shape in sorted(lora_shapes.items()):
        weight, _, part = name.rpartition(".lora_")
        if not part:
            continue
        if weight not in base_shapes:
            problems.append(Problem(f"{weight}: the base has no such tensor", lora_gguf))
            continue
        # ne order: the base weight is (in, out), lora_a (in, r), lora_b (r, out)
        want, got = (base_shapes[weight][0], shape[0]) if part == "a" else \
            (base_shapes[weight][-1], shape[-1])
        side = "input" if part == "a" else "output"
        if want != got:
            problems.append(Problem(f"{name}: {side} width {got}, the base's is {want}",
                                    lora_gguf))
    if problems:
        raise AdapterError(
            f"the adapter does not fit this base ({len(problems)} tensor(s) differ): it was "
            f"made for another model of the {lora.get('general.architecture')} family",
            file=lora_gguf, fix="serve it with the base it was trained on, or retrain it "
                                "on this one", problems=problems[:10])
