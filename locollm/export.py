"""Export an adapter folder: a LoRA GGUF for hot-swapping, verified numerically.

No llama.cpp clone and no compiler: the GGUF is written with the ``gguf`` package and checked
by loading it into llama-cpp-python next to the PEFT model it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .adapter import AdapterMeta, load_meta, lora_gguf_path
from .errors import AdapterError, CheckFailed
from .models import BaseModel, resolve


def base_for(meta: AdapterMeta, base_model: str | None = None) -> BaseModel:
    """The base an adapter was trained on; a different file (sha256) is an error."""
    base = resolve(base_model or meta.base_model)
    if meta.base_sha256 and base.sha256 and base.sha256 != meta.base_sha256:
        raise AdapterError(
            f"adapter {meta.name!r} was trained on base sha256 {meta.base_sha256[:12]}…, "
            f"this base is {base.sha256[:12]}…", fix="retrain the adapter on this base model")
    return base


def export_lora_gguf(adapter_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``adapter.gguf`` (LoRA-only, float32) from the folder's PEFT weights."""
    from safetensors.numpy import load_file

    from .gguf.lora import write_lora_gguf
    from .gguf.names import read_info

    adapter_dir = Path(adapter_dir)
    meta = load_meta(adapter_dir)
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.exists():
        raise AdapterError("adapter_model.safetensors is missing", file=adapter_dir,
                           fix="train the adapter first")
    base = base_for(meta)
    if base.gguf is None:
        raise AdapterError("the base has no GGUF to serve with", file=adapter_dir,
                           fix="export a merged GGUF instead (locollm export --merged)")
    info = read_info(base.gguf)
    tensors = {k: v for k, v in load_file(weights).items() if ".lora_" in k}
    return write_lora_gguf(tensors, out or lora_gguf_path(adapter_dir), arch=info.architecture,
                           n_layers=info.n_layers, alpha=meta.lora_alpha, name=meta.name)


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
    from .runtime.engine import Engine, EngineConfig

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

    from .models import training_dir
    from .prompt import format_prompt
    from .train.loading import quiet_load, torch_env

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


def export_merged(adapter_dir: str | Path, out: str | Path | None = None,
                  quant: str = "q4_k_m") -> Path:
    """Merge the adapter into its base GGUF and quantize (default Q4_K_M): one file to ship."""
    import tempfile

    from .gguf.merge import merge_lora
    from .runtime.engine import quantize_model

    adapter_dir = Path(adapter_dir)
    meta = load_meta(adapter_dir)
    base = base_for(meta)
    if base.gguf is None:
        raise AdapterError("merging into a GGUF needs a GGUF base", file=adapter_dir,
                           fix="use --merged-hf to write merged safetensors instead")
    lora = lora_gguf_path(adapter_dir)
    if not lora.exists():
        export_lora_gguf(adapter_dir)
    out = Path(out) if out else adapter_dir / f"{meta.name}-merged-{quant}.gguf"
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        merged = merge_lora(base.gguf, lora, Path(tmp) / "merged-f32.gguf")
        return quantize_model(merged, out, quant)


def verify_merged(adapter_dir: str | Path, merged: str | Path,
                  text: str | None = None) -> VerifyReport:
    """Compare the merged GGUF with base + LoRA GGUF in llama.cpp, position by position.

    Quantizing base + delta again costs some of a small adapter's effect, so the bar is
    relative: the merged model must pick the adapter's next token at least as often as the
    bare base does (or agree on 90% of positions). ``base_top1_agreement`` in the report is
    the bare base's agreement with base + LoRA.
    """
    from .prompt import format_prompt
    from .runtime.engine import Engine, EngineConfig

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


def export_merged_hf(adapter_dir: str | Path, out: str | Path) -> Path:
    """Merged float32 safetensors folder (for the hub or other runtimes)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .models import training_dir
    from .paths import atomic_dir
    from .train.loading import quiet_load

    adapter_dir = Path(adapter_dir)
    base = base_for(load_meta(adapter_dir))
    model_dir = training_dir(base)
    with quiet_load():
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    with atomic_dir(out) as tmp:
        merged.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(model_dir).save_pretrained(tmp)
    return Path(out)
