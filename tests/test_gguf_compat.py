"""A LoRA GGUF is checked against the base GGUF from both headers before llama.cpp loads
either: another architecture, tensors the base lacks and other shapes are each named."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_adapters import GEMMA3_270M_LAYERS, lora_tensors, make_adapter

from locollm.errors import AdapterError
from locollm.export.lora_writer import write_lora_gguf
from locollm.gguf.compat import check_lora_fits
from locollm.gguf.header import read_tensor_shapes


def _lora(tmp_path, name="a.gguf", arch="gemma3", **changes):
    tensors = lora_tensors()
    tensors.update(changes)
    return write_lora_gguf(tensors, tmp_path / name, arch=arch, n_layers=GEMMA3_270M_LAYERS,
                           alpha=8)


def test_header_shapes_are_llama_cpp_order(real_base, tmp_path):
    shapes = read_tensor_shapes(real_base.gguf)
    assert shapes["blk.0.attn_q.weight"] == (640, 1024)  # (in, out): ggml's ne order
    assert shapes["token_embd.weight"] == (640, 262144)
    lora = read_tensor_shapes(_lora(tmp_path))
    assert lora["blk.0.attn_q.weight.lora_a"] == (640, 4)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(real_base.gguf.read_bytes()[:4000])
    with pytest.raises(AdapterError, match="cut short"):
        read_tensor_shapes(cut)


def test_a_lora_made_for_this_base_fits(real_base, tmp_path):
    check_lora_fits(real_base.gguf, _lora(tmp_path))


def test_other_architecture_is_refused(real_base, tmp_path):
    with pytest.raises(AdapterError, match="architecture 'llama'"):
        check_lora_fits(real_base.gguf, _lora(tmp_path, arch="llama"))


def test_other_shapes_and_missing_tensors_are_each_listed(real_base, tmp_path):
    prefix = "base_model.model.model.layers"
    wide = {f"{prefix}.0.self_attn.q_proj.lora_A.weight": np.ones((4, 896), np.float32),
            f"{prefix}.1.self_attn.v_proj.lora_B.weight": np.ones((512, 4), np.float32)}
    tensors = {**lora_tensors(), **wide}
    deep = lora_tensors(layers=GEMMA3_270M_LAYERS + 2)  # a deeper model of the family
    lora = write_lora_gguf({**tensors, **{k: v for k, v in deep.items() if ".19." in k}},
                           tmp_path / "other.gguf", arch="gemma3", n_layers=20, alpha=8)
    with pytest.raises(AdapterError, match="does not fit") as err:
        check_lora_fits(real_base.gguf, lora)
    problems = [str(p) for p in err.value.problems]
    assert any("blk.0.attn_q.weight.lora_a: input width 896, the base's is 640" in p
               for p in problems)
    assert any("blk.1.attn_v.weight.lora_b: output width 512, the base's is 256" in p
               for p in problems)
    assert any("blk.19.attn_q.weight: the base has no such tensor" in p for p in problems)


def test_model_and_adapter_swapped_are_named(real_base, tmp_path):
    lora = _lora(tmp_path)
    with pytest.raises(AdapterError, match="not a LoRA adapter"):
        check_lora_fits(real_base.gguf, real_base.gguf)
    with pytest.raises(AdapterError, match="is a LoRA adapter, not a model"):
        check_lora_fits(lora, lora)


def test_serving_refuses_a_misfit_before_llama_cpp_loads(real_base, tmp_path, monkeypatch):
    from locollm.runtime import session

    folder = make_adapter(tmp_path / "ad", real_base)
    _lora(tmp_path, "adapter.gguf", **{
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":
            np.ones((4, 896), np.float32)})
    (tmp_path / "adapter.gguf").replace(folder / "adapter.gguf")
    loaded = []
    monkeypatch.setattr(session, "Engine", lambda *a, **k: loaded.append(a))
    with pytest.raises(AdapterError, match="does not fit"):
        session.open_engine(str(real_base.gguf), [folder])
    assert loaded == []  # the base was never handed to llama.cpp
