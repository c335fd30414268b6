"""PEFT adapters as LoRA pairs for llama.cpp: every PEFT scale folded into B exactly, and what
a LoRA GGUF cannot hold refused with a pointer to the merged export."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_hf import make_peft_adapter

from locollm.errors import AdapterError
from locollm.export.peft_lora import read_peft_lora


def _peft_deltas(model_dir, adapter):
    """PEFT's own delta weight per adapted module: the reference."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32), adapter)
    inner = model.base_model.model
    return {name: module.get_delta_weight("default").detach().numpy()
            for name, module in inner.named_modules() if hasattr(module, "get_delta_weight")
            and "default" in getattr(module, "lora_A", {})}


@pytest.mark.parametrize("config", [
    {},
    {"use_rslora": True},
    {"alpha_pattern": {"q_proj": 32}, "rank_pattern": {"down_proj": 2}},
], ids=["plain", "rslora", "patterns"])
def test_scales_fold_into_b_as_peft_applies_them(tiny_model, tmp_path, config):
    adapter = make_peft_adapter(tmp_path / "a", tiny_model, rank=4, alpha=8, config=config)
    lora = read_peft_lora(adapter)
    deltas = _peft_deltas(tiny_model, adapter)
    assert set(lora.pairs) == set(deltas) and deltas
    for module, (a, b) in lora.pairs.items():
        ours = (lora.alpha / a.shape[0]) * (b.astype(np.float64) @ a)  # llama.cpp's rule
        np.testing.assert_allclose(ours, deltas[module], rtol=1e-5, atol=1e-7, err_msg=module)
    if config.get("rank_pattern"):
        assert lora.pairs["model.layers.0.mlp.down_proj"][0].shape[0] == 2


@pytest.mark.parametrize(("change", "words"), [
    ({"use_dora": True}, "DoRA"),
    ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
    ({"peft_type": "IA3"}, "peft_type"),
])
def test_adapters_a_lora_gguf_cannot_hold_point_to_merging(tiny_model, tmp_path, change,
                                                           words):
    adapter = make_peft_adapter(tmp_path / "a", tiny_model)
    config_file = adapter / "adapter_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), **change}))
    with pytest.raises(AdapterError, match=words) as err:
        read_peft_lora(adapter)
    assert "--merged" in err.value.problem.fix


def test_stray_and_unpaired_tensors_are_named(tiny_model, tmp_path):
    from safetensors.numpy import load_file, save_file

    adapter = make_peft_adapter(tmp_path / "a", tiny_model)
    weights = adapter / "adapter_model.safetensors"
    tensors = load_file(weights)
    save_file({**tensors, "base_model.model.lm_head.weight": np.zeros((4, 4), np.float32)},
              str(weights))
    with pytest.raises(AdapterError, match="lm_head.weight"):
        read_peft_lora(adapter)
    key = next(k for k in tensors if "lora_B" in k)
    save_file({k: v for k, v in tensors.items() if k != key}, str(weights))
    with pytest.raises(AdapterError, match="partner"):
        read_peft_lora(adapter)


def test_missing_files_say_to_train(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(AdapterError, match="adapter_config.json is missing"):
        read_peft_lora(tmp_path / "a")
