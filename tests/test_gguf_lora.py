"""LoRA GGUF writing: llama.cpp names, shapes and metadata."""

from __future__ import annotations

import gguf
import numpy as np
import pytest

from locollm.errors import AdapterError
from locollm.export.lora_writer import write_lora_gguf
from locollm.gguf.names import lora_tensor_name


@pytest.mark.parametrize(("key", "name"), [
    ("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight",
     "blk.3.attn_q.weight.lora_a"),
    ("base_model.model.model.layers.0.self_attn.o_proj.lora_B.weight",
     "blk.0.attn_output.weight.lora_b"),
    ("base_model.model.model.layers.17.mlp.down_proj.lora_A.default.weight",
     "blk.17.ffn_down.weight.lora_a"),
    ("base_model.model.model.layers.5.mlp.gate_proj.lora_B.weight", "blk.5.ffn_gate.weight.lora_b"),
])
def test_peft_names_map_to_llama_cpp(key, name):
    assert lora_tensor_name(key, "gemma3", 18)[0] == name


def test_non_lora_or_unmapped_tensor_is_rejected():
    with pytest.raises(AdapterError):
        lora_tensor_name("base_model.model.model.layers.0.self_attn.q_proj.weight", "gemma3", 18)
    with pytest.raises(AdapterError, match="no llama.cpp tensor"):
        lora_tensor_name("base_model.model.model.layers.0.mystery.lora_A.weight", "gemma3", 18)


def _lora(r=4):
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    return {f"{prefix}.lora_A.weight": np.ones((r, 640), np.float32),
            f"{prefix}.lora_B.weight": np.full((1024, r), 0.5, np.float32)}


def test_written_file_is_an_adapter_with_alpha_and_shapes(tmp_path):
    out = write_lora_gguf(_lora(), tmp_path / "a.gguf", arch="gemma3", n_layers=18, alpha=8)
    reader = gguf.GGUFReader(str(out))
    field = reader.fields["general.type"]
    assert bytes(field.parts[field.data[0]]).decode() == "adapter"
    alpha = reader.fields["adapter.lora.alpha"]
    assert float(alpha.parts[alpha.data[0]][0]) == 8.0
    tensors = {t.name: t for t in reader.tensors}
    assert set(tensors) == {"blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b"}
    # ggml stores dims reversed: lora_a is ne=[in, r], lora_b is ne=[r, out]
    assert list(tensors["blk.0.attn_q.weight.lora_a"].shape) == [640, 4]
    assert list(tensors["blk.0.attn_q.weight.lora_b"].shape) == [4, 1024]
    np.testing.assert_allclose(np.asarray(tensors["blk.0.attn_q.weight.lora_b"].data), 0.5)


def test_unpaired_tensor_is_an_error_and_writes_nothing(tmp_path):
    tensors = _lora()
    tensors.pop(next(k for k in tensors if "lora_B" in k))
    with pytest.raises(AdapterError, match="partner"):
        write_lora_gguf(tensors, tmp_path / "a.gguf", arch="gemma3", n_layers=18, alpha=8)
    assert not any(tmp_path.iterdir())
