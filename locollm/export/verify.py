"""Numerical checks of an export: llama.cpp with the exported file against transformers.

Three files can be checked, each against the transformers model it must reproduce, on the same
token ids (the probe is tokenized once, by the Hugging Face tokenizer):

* the **base** GGUF (a conversion, or the GGUF a base was dequantized from) against the Hugging
  Face base: the next-token choice must agree on most positions, and llama.cpp must tokenize
  the probe (nearly) as transformers does;
* the **LoRA GGUF** on that base against the PEFT adapter: the change the adapter makes to
  the logits must correlate (the base GGUF may be quantized, so absolute logits differ);
* the **merged GGUF** against the PEFT adapter: the change it makes to the bare base GGUF's
  logits must correlate with the adapter's change. Requantizing the merged weights adds noise
  that is uncorrelated with that change, so an export that lost the adapter scores about 0
  at any quantization, while a kept adapter scores high even where Q4_K_M blurs it (how much
  of the adapter's effect survives, in KL, is reported as ``effect_kept``).

:func:`check_stops` checks that generation ends: the token that closes an answer (the chat
template's end of turn, or EOS) must be one llama.cpp stops on. A failed check raises
:class:`~locollm.errors.CheckFailed` with its numbers.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..adapter.meta import load_meta, lora_gguf_path
from ..errors import CheckFailed
from .lora import base_for, export_lora_gguf

PROBE = ("Explain what a LoRA adapter is.", "In one sentence.")
# An answer after the probe prompt: the positions that count most for an adapter.
PROBE_ANSWER = ("A LoRA adapter is a small set of low-rank matrices added to a frozen model, "
                "so that 12 + 35 = 47 can be learned cheaply.")
# The bars. Base: llama.cpp picks transformers' next token on 3 positions of 4 (a Q4_K_M
# conversion of a small model stays well above; a wrong tensor layout or tokenizer falls far
# below), and tokenizes the probe with 90% of the tokens in common. LoRA: the adapter's logit
# change correlates at 0.9 (the LoRA itself stays float32). Merged: at 0.5, the adapter's
# change is at least 0.58 times the requantization noise (r = S / sqrt(S^2 + N^2)); the shipped
# math adapter scores 0.99 at Q8_0 and 0.68 at Q4_K_M, the base alone 0.
MIN_BASE_TOP1 = 0.75
MIN_TOKEN_AGREEMENT = 0.9
MIN_DELTA_CORRELATION = 0.9
MIN_MERGED_CORRELATION = 0.5


@dataclass
class Agreement:
    """How closely llama.cpp with one exported file follows transformers on the probe."""

    what: str  # "base", "lora" or "merged"
    n_positions: int
    top1_agreement: float  # share of positions where both pick the same next token
    kl: float  # mean KL divergence transformers -> llama.cpp per position (nats)
    passed: bool
    # base: the share of probe tokens llama.cpp and transformers have in common (1: identical)
    token_agreement: float | None = None
    # lora/merged: correlation of the adapter's logit change, transformers vs llama.cpp
    delta_correlation: float | None = None
    # lora/merged: KL from the adapted model to the bare base: the adapter's own effect
    effect_kl: float | None = None
    # lora/merged: the same top-1 agreement for the bare base GGUF (the quantization floor)
    base_top1_agreement: float | None = None
    # merged: KL of the bare base GGUF from the bare transformers base (conversion noise)
    floor_kl: float | None = None
    # lora: the bare base GGUF checked against the Hugging Face base on the same probe
    base: Agreement | None = None

    @property
    def effect_kept(self) -> float | None:
        """merged: share of the adapter's effect (in KL) the merged file keeps."""
        if self.effect_kl is None or self.effect_kl <= 0 or self.what != "merged":
            return None
        return 1.0 - (self.kl - (self.floor_kl or 0.0)) / self.effect_kl


# Backwards-compatible name: verify_export and verify_merged have always returned this.
VerifyReport = Agreement


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def kl_divergence(ref: np.ndarray, other: np.ndarray) -> float:
    """Mean over positions of KL(softmax(ref) || softmax(other)), in nats."""
    p, q = _log_softmax(ref.astype(np.float64)), _log_softmax(other.astype(np.float64))
    return float((np.exp(p) * (p - q)).sum(-1).mean())


def top1(ref: np.ndarray, other: np.ndarray) -> float:
    """Share of positions where both logits pick the same token."""
    return float((ref.argmax(-1) == other.argmax(-1)).mean())


def delta_correlation(ref_base, ref_adapter, base, adapter) -> float:
    """Correlation of the two logit changes (adapter - base); 0 when either is nil."""
    d_ref, d_other = (ref_adapter - ref_base).ravel(), (adapter - base).ravel()
    if d_ref.std() == 0 or d_other.std() == 0:
        return 0.0
    return float(np.corrcoef(d_ref, d_other)[0, 1])


def _reference_dtype(model_dir: Path):
    """float32 for the reference unless that needs over 8 GB (then the model's own dtype)."""
    import torch

    from .convert import source_type

    size = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))
    own = source_type(model_dir)
    in_f32 = size * (1 if own == "f32" else 2)
    return torch.float32 if in_f32 <= 8e9 else "auto"


def hf_logits(model_dir: Path, ids: list[int], adapter_dir: Path | None = None):
    """transformers logits of ``ids``: (base, adapted or None)."""
    import torch
    from transformers import AutoModelForCausalLM

    from ..train.loading import quiet_load, torch_env

    torch_env()
    with quiet_load():
        model = AutoModelForCausalLM.from_pretrained(model_dir,
                                                     dtype=_reference_dtype(model_dir))
    tensor = torch.tensor([ids])
    with torch.no_grad():
        if adapter_dir is None:
            return model(tensor).logits[0].float().numpy(), None
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(model, adapter_dir)
        adapted = peft_model(tensor).logits[0].float().numpy()
        with peft_model.disable_adapter():
            base = peft_model(tensor).logits[0].float().numpy()
    return base, adapted


def llama_logits(gguf_file: Path, ids: list[int], lora: Path | None = None,
                 texts: tuple[str, ...] = ()):
    """llama.cpp logits of ``ids``: (base, with ``lora`` or None), and its tokens of
    ``texts``."""
    from ..runtime.engine import Engine, EngineConfig

    with Engine(gguf_file, EngineConfig(logits_all=True, n_ctx=max(512, len(ids) + 8))) as eng:
        tokens = [eng.tokenize(t) for t in texts]
        base = eng.logits(ids)
        adapted = None
        if lora is not None:
            eng.load_adapter("verify", lora)
            adapted = eng.logits(ids, adapter="verify")
    return base, adapted, tokens


def _probe(model_dir: Path, text: str | None, fmt=None) -> tuple[str, list[int], object]:
    """The probe text and its Hugging Face token ids."""
    from transformers import AutoTokenizer

    from ..prompt import format_prompt

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    text = text or format_prompt(*PROBE, fmt) + PROBE_ANSWER
    return text, tokenizer(text)["input_ids"], tokenizer


def token_agreement(a: list[int], b: list[int]) -> float:
    """Share of tokens two tokenizations have in common, in order (1.0: identical)."""
    return difflib.SequenceMatcher(a=a, b=b, autojunk=False).ratio()


def base_agreement(hf: np.ndarray, ll: np.ndarray, ids: list[int],
                   ll_ids: list[int]) -> Agreement:
    """The base check's numbers from both models' logits and tokens of the probe."""
    tokens = token_agreement(ids, ll_ids)
    agreement = top1(hf, ll)
    return Agreement("base", len(ids), agreement, kl_divergence(hf, ll),
                     agreement >= MIN_BASE_TOP1 and tokens >= MIN_TOKEN_AGREEMENT,
                     token_agreement=tokens)


def _raise_base(result: Agreement, gguf_file: Path) -> None:
    if not result.passed:
        raise CheckFailed(
            f"the GGUF does not match the Hugging Face model: top-1 agreement "
            f"{result.top1_agreement:.3f} (bar {MIN_BASE_TOP1}), KL {result.kl:.4f}, tokens "
            f"in common {result.token_agreement:.3f} (bar {MIN_TOKEN_AGREEMENT})",
            file=gguf_file, fix="convert again at a higher precision (--quant q8_0 or f16); "
                                "if the tokens differ, the tokenizer was converted wrong "
                                "(check --pre-tokenizer)")


def verify_base(model_dir: str | Path, gguf_file: str | Path,
                text: str | None = None) -> Agreement:
    """Compare a base GGUF with the Hugging Face model it came from.

    Raises:
        CheckFailed: top-1 agreement or token agreement under the bar.
    """
    model_dir, gguf_file = Path(model_dir), Path(gguf_file)
    text, ids, _ = _probe(model_dir, text)
    ll, _, (ll_ids,) = llama_logits(gguf_file, ids, texts=(text,))
    hf, _ = hf_logits(model_dir, ids)
    result = base_agreement(hf, ll, ids, ll_ids)
    _raise_base(result, gguf_file)
    return result


def _adapter_inputs(adapter_dir: Path, text: str | None, base_gguf: Path | None):
    from ..models import serving_gguf, training_dir

    meta = load_meta(adapter_dir)
    base = base_for(meta)
    model_dir = training_dir(base)
    text, ids, _ = _probe(model_dir, text, meta.fmt())
    return meta, model_dir, Path(base_gguf or serving_gguf(base)), text, ids


def verify_export(adapter_dir: str | Path, text: str | None = None,
                  min_correlation: float = MIN_DELTA_CORRELATION, *,
                  lora: str | Path | None = None,
                  base_gguf: str | Path | None = None) -> Agreement:
    """Compare llama.cpp with the LoRA GGUF on the serving base against the PEFT adapter.

    The bare base GGUF is checked on the same probe too (``.base`` of the result): a base
    converted from Hugging Face must match it (:func:`verify_base`'s bars).

    Args:
        lora: the LoRA GGUF (default the folder's ``adapter.gguf``, exported if missing).
        base_gguf: the base GGUF to run it on (default the one serving uses).

    Raises:
        CheckFailed: the adapter's logit change does not correlate at ``min_correlation``,
            or a converted base does not match its Hugging Face model.
    """
    adapter_dir = Path(adapter_dir)
    meta, model_dir, base_gguf, text, ids = _adapter_inputs(adapter_dir, text, base_gguf)
    gguf_file = Path(lora or lora_gguf_path(adapter_dir))
    if not gguf_file.exists():
        export_lora_gguf(adapter_dir, gguf_file)
    ll_base, ll_adapter, (ll_ids,) = llama_logits(base_gguf, ids, gguf_file, texts=(text,))
    hf_base, hf_adapter = hf_logits(model_dir, ids, adapter_dir)
    base = base_agreement(hf_base, ll_base, ids, ll_ids)
    if base_for(meta).gguf is None:  # the base is a conversion of ours: it must match
        _raise_base(base, base_gguf)
    corr = delta_correlation(hf_base, hf_adapter, ll_base, ll_adapter)
    result = Agreement("lora", len(ids), top1(hf_adapter, ll_adapter),
                       kl_divergence(hf_adapter, ll_adapter), corr >= min_correlation,
                       delta_correlation=corr, effect_kl=kl_divergence(hf_adapter, hf_base),
                       base_top1_agreement=base.top1_agreement, base=base)
    if not result.passed:
        raise CheckFailed(f"the LoRA GGUF does not match the trained adapter: correlation of "
                          f"logit changes {corr:.3f} < {min_correlation}", file=gguf_file,
                          fix="re-export; if it persists, report a bug with this adapter")
    return result


def verify_merged(adapter_dir: str | Path, merged: str | Path, text: str | None = None, *,
                  base_gguf: str | Path | None = None) -> Agreement:
    """Compare the merged GGUF with the PEFT adapter in transformers.

    What it changes against the bare base GGUF must correlate with what the adapter changes
    in transformers (at :data:`MIN_MERGED_CORRELATION`); a merged file that lost the adapter
    changes nothing the adapter does. ``effect_kept`` says how much of the adapter's effect
    (in KL) survived the quantization.

    Raises:
        CheckFailed: with the numbers.
    """
    adapter_dir, merged = Path(adapter_dir), Path(merged)
    meta, model_dir, base_gguf, _, ids = _adapter_inputs(adapter_dir, text, base_gguf)
    ll_merged, _, _ = llama_logits(merged, ids)
    ll_base, _, _ = llama_logits(base_gguf, ids)
    hf_base, hf_adapter = hf_logits(model_dir, ids, adapter_dir)
    effect = kl_divergence(hf_adapter, hf_base)
    floor = kl_divergence(hf_base, ll_base)
    kl = kl_divergence(hf_adapter, ll_merged)
    corr = delta_correlation(hf_base, hf_adapter, ll_base, ll_merged)
    result = Agreement("merged", len(ids), top1(hf_adapter, ll_merged), kl,
                       corr >= MIN_MERGED_CORRELATION, delta_correlation=corr,
                       effect_kl=effect, base_top1_agreement=top1(hf_adapter, ll_base),
                       floor_kl=floor)
    if not result.passed:
        raise CheckFailed(
            f"the merged GGUF lost the adapter: its change to the base correlates "
            f"{corr:.3f} with the adapter's (bar {MIN_MERGED_CORRELATION}); it keeps "
            f"{result.effect_kept:.0%} of the adapter's effect (KL from the adapter "
            f"{kl:.4f}, the bare base's {effect:.4f}); top-1 agreement "
            f"{result.top1_agreement:.3f}, bare base {result.base_top1_agreement:.3f}",
            file=merged, fix="export again; try --quant q8_0 to see whether quantization "
                             "causes it")
    return result


@dataclass
class StopCheck:
    """Does generation end where an answer ends?"""

    end_text: str  # the text that closes an answer (end of turn, or EOS)
    token: int  # llama.cpp's first token of it
    token_text: str
    passed: bool


def answer_end(gguf_file: str | Path, fmt=None) -> str:
    """The text that closes an answer: the chat template's end of turn (from the GGUF's own
    template, else from the prompt format ``fmt``), or the EOS token's text."""
    from ..gguf.header import read_keys

    keys = read_keys(gguf_file, {"tokenizer.chat_template"})
    template = keys.get("tokenizer.chat_template")
    if template:
        end = _template_end(template)
        if end:
            return end
    parts = fmt.chat if fmt is not None else None
    if parts is not None and parts.end.strip():
        return parts.end
    return ""  # the EOS token itself: checked by id


def _template_end(template: str) -> str:
    """What a chat template writes right after an assistant answer."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = lambda msg: (_ for _ in ()).throw(ValueError(msg))
    answer = "LocollmAnswerSentinel7f3a"
    try:
        rendered = env.from_string(template).render(
            messages=[{"role": "user", "content": "hi"},
                      {"role": "assistant", "content": answer}],
            add_generation_prompt=False, bos_token="", eos_token="")
    except Exception:  # a template this single exchange cannot satisfy: use the fallback
        return ""
    tail = rendered[rendered.find(answer) + len(answer):] if answer in rendered else ""
    return tail.lstrip(" ") if tail.strip() else ""


def check_stops(gguf_file: str | Path, fmt=None) -> StopCheck:
    """Check llama.cpp stops on the token that closes an answer (the endless-output bug).

    Raises:
        CheckFailed: that token is not an end-of-generation token of the GGUF.
    """
    from ..runtime.engine import Engine, EngineConfig

    end = answer_end(gguf_file, fmt)
    with Engine(gguf_file, EngineConfig(n_ctx=64)) as eng:
        token = eng.tokenize(end, add_bos=False)[0] if end.strip() else eng.eos_token()
        result = StopCheck(end, token, eng.token_text(token), eng.is_end(token))
    if not result.passed:
        raise CheckFailed(
            f"generation will not stop: an answer ends with {end!r}, whose token "
            f"{result.token_text!r} (id {token}) is not an end-of-generation token of this "
            f"GGUF", file=gguf_file,
            fix=f"set eos_token to {result.token_text!r} in the model's tokenizer_config.json "
                "(or generation_config.json) and convert again")
    return result
