"""Merged export: LoRA folded into the base GGUF, quantized by llama.cpp, verified."""

from __future__ import annotations

import gguf
import pytest
from helpers_adapters import make_adapter

from locollm.export.merged import export_merged
from locollm.export.verify import verify_merged

pytestmark = pytest.mark.slow


def test_merged_q8_follows_base_plus_lora(real_base, tmp_path):
    folder = make_adapter(tmp_path / "m", real_base, std=0.08, seed=5)
    out = export_merged(folder, tmp_path / "merged.gguf", quant="q8_0")
    reader = gguf.GGUFReader(str(out))
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.Q8_0
    assert reader.fields["tokenizer.ggml.tokens"].contents(0) is not None
    report = verify_merged(folder, out)
    assert report.passed
    assert report.top1_agreement > report.base_top1_agreement
    assert report.delta_correlation > 0.9
