"""Merged export on a GGUF base: LoRA folded into the base GGUF, quantized by llama.cpp, the
metadata copied byte for byte, and the result following base + LoRA in llama.cpp."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
from helpers_adapters import make_adapter

from locollm.export.merged import export_merged
from locollm.gguf.header import read_layout
from locollm.runtime.engine import Engine, EngineConfig

pytestmark = pytest.mark.slow


def test_merged_q8_follows_base_plus_lora(real_base, tmp_path):
    folder = make_adapter(tmp_path / "m", real_base, std=0.08, seed=5)
    out = export_merged(folder, tmp_path / "merged.gguf", quant="q8_0")
    reader = gguf.GGUFReader(str(out))
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.Q8_0
    original = gguf.GGUFReader(str(real_base.gguf))
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "gemma3.block_count"):
        assert reader.fields[key].contents() == original.fields[key].contents(), key
    assert len(read_layout(out).tensors) == len(read_layout(real_base.gguf).tensors)
    with Engine(real_base.gguf, EngineConfig(logits_all=True)) as eng:
        ids = eng.tokenize("### Instruction:\nAdd the numbers.\n\n### Input:\n12 + 35\n\n"
                           "### Response:\nThe answer is 47.")
        eng.load_adapter("m", folder / "adapter.gguf")
        with_lora, bare = eng.logits(ids, adapter="m"), eng.logits(ids)
    with Engine(out, EngineConfig(logits_all=True)) as eng:
        merged = eng.logits(ids)
    follows = (merged.argmax(-1) == with_lora.argmax(-1)).mean()
    assert follows > (bare.argmax(-1) == with_lora.argmax(-1)).mean()
    delta, ref = (merged - bare).ravel(), (with_lora - bare).ravel()
    assert np.corrcoef(delta, ref)[0, 1] > 0.9
