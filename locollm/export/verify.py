"""Numerical checks of an export: llama.cpp with the exported file against the model it came from.

The LoRA GGUF is compared with the PEFT adapter in transformers (the change the adapter makes
to the logits must match), the merged GGUF with base + LoRA GGUF in llama.cpp. A check that
fails raises :class:`~locollm.errors.CheckFailed` with its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..adapter.meta import load_meta, lora_gguf_path
from ..errors import CheckFailed
from .lora import base_for, export_lora_gguf


@dataclass
class VerifyReport:
    """How closely llama.cpp with the LoRA GGUF follows the PEFT model."""

    delta_correlation: float  # correlation of (adapter - base) logits, PEFT vs llama.cpp
    top1_agreement: float  # share of positions where both pick the same next token
    base_top1_agreement: float  # the same for the bare base: the quantization floor
    n_positions: int
    passed: bool


PROBE = ("Explain what a LoRA adapter is.", "In one sentence.")


def _llama_logits(base_gguf: Path, name: str, lora: Path, text: str):
    """llama.cpp logits of ``text`` for the bare base and for base + LoRA, and the tokens."""
    from ..runtime.engine import Engine, EngineConfig

    with Engine(base_gguf, EngineConfig(logits_all=True)) as eng:
        ids = eng.tokenize(text)
        eng.load_adapter(name, lora)
        return eng.logits(ids), eng.logits(ids, adapter=name), ids


def _agreement(ref_base, ref_adapter, base, adapter) -> tuple[float, float]:
    """Correlation of the two logit changes (adapter - base), and top-1 agreement of the two
    adapted models."""
    import numpy as np

    d_ref, d_other = (ref_adapter - ref_base).ravel(), (adapter - base).ravel()
    corr = float(np.corrcoef(d_ref, d_other)[0, 1]) if d_ref.std() > 0 else 0.0
    return corr, float((ref_adapter.argmax(-1) == adapter.argmax(-1)).mean())


def verify_export(adapter_dir: str | Path, text: str | None = None,
                  min_correlation: float = 0.9) -> VerifyReport:
    """Compare logits of the PEFT adapter (float32, transformers) with llama.cpp + LoRA GGUF.

    The base GGUF is quantized, so absolute logits differ a little; what must match is the
    change the adapter makes. Raises :class:`CheckFailed` when it does not.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from ..models import training_dir
    from ..prompt import format_prompt
    from ..train.loading import quiet_load, torch_env

    torch_env()
    adapter_dir = Path(adapter_dir)
    meta = load_meta(adapter_dir)
    base = base_for(meta)
    gguf_file = lora_gguf_path(adapter_dir)
    if not gguf_file.exists():
        export_lora_gguf(adapter_dir)
    ll_base, ll_adapter, ids = _llama_logits(base.gguf, meta.name, gguf_file,
                                             text or format_prompt(*PROBE))
    with quiet_load():
        model = AutoModelForCausalLM.from_pretrained(training_dir(base), dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(model, adapter_dir)
    with torch.no_grad():
        tensor = torch.tensor([ids])
        hf_adapter = peft_model(tensor).logits[0].numpy()
        with peft_model.disable_adapter():
            hf_base = peft_model(tensor).logits[0].numpy()
    corr, top1 = _agreement(hf_base, hf_adapter, ll_base, ll_adapter)
    base_top1 = float((hf_base.argmax(-1) == ll_base.argmax(-1)).mean())
    report = VerifyReport(corr, top1, base_top1, len(ids), corr >= min_correlation)
    if not report.passed:
        raise CheckFailed(f"export does not match the trained adapter: correlation of logit "
                          f"changes {corr:.3f} < {min_correlation}", file=gguf_file,
                          fix="re-export; if it persists, report a bug with this adapter")
    return report


def verify_merged(adapter_dir: str | Path, merged: str | Path,
                  text: str | None = None) -> VerifyReport:
    """Compare the merged GGUF with base + LoRA GGUF in llama.cpp, position by position.

    Quantizing base + delta again costs some of a small adapter's effect, so the bar is
    relative: the merged model must pick the adapter's next token at least as often as the
    bare base does (or agree on 90% of positions). ``base_top1_agreement`` in the report is
    the bare base's agreement with base + LoRA.
    """
    from ..prompt import format_prompt
    from ..runtime.engine import Engine, EngineConfig

    adapter_dir = Path(adapter_dir)
    meta = load_meta(adapter_dir)
    ll_base, ll_adapter, ids = _llama_logits(base_for(meta).gguf, meta.name,
                                             lora_gguf_path(adapter_dir),
                                             text or format_prompt(*PROBE))
    with Engine(merged, EngineConfig(logits_all=True)) as eng:
        ll_merged = eng.logits(ids)
    corr, top1 = _agreement(ll_base, ll_adapter, ll_base, ll_merged)
    base_top1 = float((ll_adapter.argmax(-1) == ll_base.argmax(-1)).mean())
    report = VerifyReport(corr, top1, base_top1, len(ids), top1 >= min(base_top1, 0.9))
    if not report.passed:
        raise CheckFailed(f"merged model follows base + LoRA on only {top1:.0%} of next-token "
                          f"choices (the bare base: {base_top1:.0%})", file=merged,
                          fix="try --quant q8_0 to see whether quantization causes it")
    return report
