"""``locollm export`` as one library call: the chosen exports, what runs them, their checks.

For each export the adapter folder gets the file, an Ollama ``Modelfile`` and a
``llama-server`` script (:mod:`.runners`), and with ``verify`` the numerical check against
transformers (:mod:`.verify`) and the check that generation stops. Each result is handed to
``on_result`` as soon as it exists, so a caller can report progress through a long merge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..adapter.meta import load_meta


@dataclass
class ExportOptions:
    """What ``locollm export`` writes and checks."""

    gguf: bool = True  # the LoRA GGUF (hot-swap on the shared base)
    merged: bool = False  # a merged, quantized model GGUF
    quant: str = "q4_k_m"  # quantization of the merged GGUF
    merged_hf: Path | None = None  # also merged float32 safetensors into this folder
    verify: bool = False  # check each export numerically, and that generation stops
    output: Path | None = None  # path of the LoRA GGUF (default ADAPTER/adapter.gguf)
    # base GGUF the LoRA runs on (default: the adapter's own, or its conversion)
    base_model: Path | None = None
    # for a Hugging Face base whose BPE tokenizer llama.cpp does not recognise
    pre_tokenizer: str | None = None


@dataclass
class Exported:
    """One thing an export produced or checked."""

    what: str  # "lora", "merged", "merged-hf", "runners", "verify", "stops"
    path: Path | None = None
    extra: Path | None = None  # runners: the llama-server script
    report: object | None = None  # verify: Agreement; stops: StopCheck
    of: str = ""  # which export a runner or check belongs to ("lora" or "merged")


def _base_gguf(folder: Path, options: ExportOptions) -> Path:
    """The base GGUF the LoRA runs on: the one given, or the adapter's (converted once)."""
    from ..models import resolve, serving_gguf
    from .lora import base_for

    if options.base_model is not None:
        return serving_gguf(resolve(str(options.base_model)))
    return serving_gguf(base_for(load_meta(folder)), options.pre_tokenizer)


def export_adapter(folder: str | Path, options: ExportOptions,
                   on_result: Callable[[Exported], object] | None = None) -> list[Exported]:
    """Run the exports ``options`` ask for on the adapter ``folder``; return every result."""
    from ..gguf.compat import check_lora_fits
    from .lora import export_lora_gguf
    from .merged import export_merged, export_merged_hf
    from .runners import write_runners
    from .verify import check_stops, verify_export, verify_merged

    folder = Path(folder)
    fmt = load_meta(folder).fmt()
    results: list[Exported] = []

    def done(item: Exported) -> None:
        results.append(item)
        if on_result is not None:
            on_result(item)

    base = None
    if options.gguf:
        lora = export_lora_gguf(folder, options.output)
        done(Exported("lora", lora))
        base = _base_gguf(folder, options)
        check_lora_fits(base, lora)
        done(Exported("runners", *write_runners(folder, base, lora=lora), of="lora"))
        if options.verify:
            done(Exported("verify", lora, report=verify_export(folder, lora=lora,
                                                               base_gguf=base), of="lora"))
            done(Exported("stops", base, report=check_stops(base, fmt), of="lora"))
    if options.merged:
        merged = export_merged(folder, quant=options.quant, pre_tokenizer=options.pre_tokenizer)
        done(Exported("merged", merged))
        done(Exported("runners", *write_runners(folder, merged), of="merged"))
        if options.verify:
            base = base or _base_gguf(folder, options)  # its noise is the check's floor
            done(Exported("verify", merged, report=verify_merged(folder, merged,
                                                                base_gguf=base), of="merged"))
            done(Exported("stops", merged, report=check_stops(merged, fmt), of="merged"))
    if options.merged_hf:
        done(Exported("merged-hf", export_merged_hf(folder, options.merged_hf)))
    return results
