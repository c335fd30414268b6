"""Tiny llama, mistral, qwen2, qwen3, gemma3 and phi3 models through conversion, LoRA GGUF and
merge, with transformers-vs-llama.cpp agreement at each step (real converter, real llama.cpp).
"""

from __future__ import annotations

import gguf
import numpy as np
import pytest
from helpers_hf import make_peft_adapter
from tiny_archs import ARCHS, build_arch_model

from locollm.export.convert import convert_model
from locollm.export.lora import export_lora_gguf
from locollm.export.merged import export_merged
from locollm.export.verify import MIN_DELTA_CORRELATION, verify_base, verify_export, verify_merged
from locollm.runtime.engine import Engine

pytestmark = pytest.mark.slow

PLAIN = ["Tom has 12 apples and gets 35 more.", "What is the capital of France? Paris."]


@pytest.fixture(scope="module", params=sorted(ARCHS))
def arch(request, tmp_path_factory):
    """(name, model folder, its float32 conversion) of one tiny architecture."""
    name = request.param
    root = tmp_path_factory.mktemp(name)
    folder = build_arch_model(name, root / f"tiny-{name}")
    done = convert_model(folder, root / "converted-f32.gguf", quant="f32",
                         pre_tokenizer=ARCHS[name].pre_tokenizer)
    return name, folder, done.path


def _tensors(path):
    reader = gguf.GGUFReader(str(path))
    return reader, {t.name: np.asarray(t.data) for t in reader.tensors}


def test_conversion_matches_transformers_and_tokenizes_alike(arch):
    from transformers import AutoTokenizer

    name, folder, converted = arch
    result = verify_base(folder, converted)
    assert result.top1_agreement == 1.0 and result.kl < 1e-4, (name, result)
    assert result.token_agreement >= 0.9
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with Engine(converted) as eng:
        for text in PLAIN:
            assert eng.tokenize(text) == tokenizer(text)["input_ids"], (name, text)
        template = eng.meta("tokenizer.chat_template")
    assert template == ARCHS[name].chat_template  # the chat template went along


def test_lora_gguf_equals_llama_cpp_converter_and_follows_peft(arch, tmp_path):
    name, folder, converted = arch
    adapter = make_peft_adapter(tmp_path / "ad", folder)
    ours = export_lora_gguf(adapter, tmp_path / "ours.gguf", writer="locollm")
    theirs = export_lora_gguf(adapter, tmp_path / "theirs.gguf", writer="llama.cpp")
    (r_ours, t_ours), (r_theirs, t_theirs) = _tensors(ours), _tensors(theirs)
    assert set(t_ours) == set(t_theirs) and t_ours, name
    for key, value in t_ours.items():
        np.testing.assert_allclose(value, t_theirs[key], rtol=1e-6, atol=1e-7, err_msg=key)
    alpha = [r.fields["adapter.lora.alpha"].contents() for r in (r_ours, r_theirs)]
    assert alpha[0] == alpha[1] == 8
    export_lora_gguf(adapter)  # the default writer, into the folder
    report = verify_export(adapter, base_gguf=converted)
    assert report.delta_correlation > 0.99 and report.base.top1_agreement == 1.0, report
    assert report.effect_kl > 0.01  # the adapter changes the model: the check is meaningful


def test_merged_gguf_from_hf_base_follows_peft(arch, tmp_path):
    name, folder, converted = arch
    adapter = make_peft_adapter(tmp_path / "ad", folder, seed=3)
    merged = export_merged(adapter, tmp_path / "merged.gguf", quant="f32",
                           pre_tokenizer=ARCHS[name].pre_tokenizer)
    report = verify_merged(adapter, merged, base_gguf=converted)
    assert report.effect_kept > 0.99 and report.top1_agreement > 0.95, (name, report)
    assert report.delta_correlation > MIN_DELTA_CORRELATION


def test_embedding_lora_goes_through_llama_cpps_converter(tmp_path):
    """A LoRA on the token embeddings (PEFT's lora_embedding_A/B, stored transposed) is
    outside locollm's writer: llama.cpp's converter writes it, and it still follows PEFT."""
    folder = build_arch_model("llama", tmp_path / "llama")
    converted = convert_model(folder, tmp_path / "llama.gguf", quant="f32").path
    adapter = make_peft_adapter(tmp_path / "ad", folder, config={
        "target_modules": ["q_proj", "v_proj", "embed_tokens"]})
    reader, tensors = _tensors(export_lora_gguf(adapter))
    assert tensors["token_embd.weight.lora_a"].shape == (420, 4)  # numpy order of ne [4, 420]
    report = verify_export(adapter, base_gguf=converted)
    assert report.delta_correlation > 0.99 and report.effect_kl > 0.01, report
