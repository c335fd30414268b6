"""The embedded Gemma 3 270M as a real Hugging Face model: its dequantized training folder
converts back to a GGUF that matches transformers and the original GGUF, and the merged export's
check fails for a file that lost the adapter."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_hf import make_peft_adapter

from locollm.errors import CheckFailed
from locollm.export.convert import convert_folder
from locollm.export.merge_tensors import merge_lora
from locollm.export.merged import export_merged
from locollm.export.verify import verify_base, verify_merged
from locollm.models import training_dir
from locollm.runtime.engine import Engine, EngineConfig, quantize_model

pytestmark = pytest.mark.slow

TEXTS = ["Tom has 12 apples and gets 35 more. How many apples does Tom have now?",
         "  two  spaces\n\nand\tnewlines   x\n\n\n y <start_of_turn>user\nhi<end_of_turn>",
         "### Instruction:\nAdd the numbers.\n\n### Response:\n47", "héllo 🚀 日本語 <b>x</b>"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory, shared_models):
    from helpers_adapters import locollm_env

    from locollm.models import resolve

    with locollm_env(tmp_path_factory.mktemp("g"), shared_models):
        base = resolve("gemma-3-270m")
        folder = training_dir(base)
        out = convert_folder(folder, tmp_path_factory.mktemp("gguf") / "gemma-f32.gguf",
                             "f32", name="gemma-3-270m")
    return base, folder, out


def test_dequantized_folder_converts_back_to_a_matching_gguf(converted):
    base, folder, out = converted
    assert (folder / "tokenizer.model").exists()  # rebuilt from the GGUF's vocabulary
    result = verify_base(folder, out)
    assert result.top1_agreement >= 0.97 and result.token_agreement == 1.0, result
    with Engine(base.gguf, EngineConfig(logits_all=True)) as original, \
            Engine(out, EngineConfig(logits_all=True)) as back:
        for text in TEXTS:  # whitespace runs, specials, bytes: the same tokens
            assert back.tokenize(text) == original.tokenize(text), text
        ids = original.tokenize(TEXTS[0] + " " + TEXTS[2])
        a, b = original.logits(ids), back.logits(ids)
    # the original is Q4_K_M run in llama.cpp's quantized kernels, the conversion is exactly
    # its dequantized weights in float32: the same model, up to rounding
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99
    assert (a.argmax(-1) == b.argmax(-1)).mean() >= 0.85


def test_merged_check_fails_for_an_export_that_lost_the_adapter(converted, real_base,
                                                               tmp_path):
    _, folder, _ = converted
    adapter = make_peft_adapter(tmp_path / "math", folder, base_name="gemma-3-270m",
                                base_sha256=real_base.sha256, std=0.03, rank=8, alpha=16)
    merged = export_merged(adapter, tmp_path / "merged-q8_0.gguf", quant="q8_0")
    good = verify_merged(adapter, merged)
    assert good.passed and good.effect_kept > 0.8, good
    with pytest.raises(CheckFailed, match="lost the adapter") as err:
        verify_merged(adapter, real_base.gguf)  # "merged" = the bare base: adapter lost
    assert "keeps" in str(err.value) and "KL" in str(err.value)
    # lost in the merge, then requantized: the noise is no stand-in for the adapter
    lost = merge_lora(real_base.gguf, adapter / "adapter.gguf", tmp_path / "lost-f32.gguf",
                      scale=0.0)
    with pytest.raises(CheckFailed, match="lost the adapter"):
        verify_merged(adapter, quantize_model(lost, tmp_path / "lost-q4.gguf", "q4_k_m"))
