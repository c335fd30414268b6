"""The engine on real llama.cpp and the real base: adapters validated, swapped, cache reset."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_adapters import lora_tensors, make_adapter

from locollm.adapter.meta import lora_gguf_path
from locollm.errors import AdapterError, RuntimeEngineError
from locollm.export.lora_writer import write_lora_gguf
from locollm.prompt import format_prompt
from locollm.runtime.engine import Engine, EngineConfig, quantize_model

PROMPT = format_prompt("Name a colour.")


@pytest.fixture
def engine(real_base):
    with Engine(real_base.gguf, EngineConfig(logits_all=True, n_ctx=512)) as eng:
        yield eng


def test_adapter_changes_logits_and_switching_back_restores_base(engine, real_base, tmp_path):
    folder = make_adapter(tmp_path / "a", real_base, std=0.05)
    engine.load_adapter("a", lora_gguf_path(folder))
    ids = engine.tokenize(PROMPT)
    base = engine.logits(ids)
    adapted = engine.logits(ids, adapter="a")
    assert engine.active == "a"
    assert np.abs(adapted - base).mean() > 0.01
    again = engine.logits(ids, adapter=None)
    np.testing.assert_allclose(again, base, atol=1e-4)


def test_generation_after_switch_matches_a_fresh_context(real_base, tmp_path):
    """Without the cache reset, the cached prefix from the other model leaks into the answer."""
    folder = make_adapter(tmp_path / "a", real_base, std=0.08, seed=3)
    with Engine(real_base.gguf) as eng:
        eng.load_adapter("a", lora_gguf_path(folder))
        first_base = eng.complete(PROMPT, max_tokens=12).text
        with_adapter = eng.complete(PROMPT, adapter="a", max_tokens=12).text
        second_base = eng.complete(PROMPT, max_tokens=12).text
        assert eng.active is None
    assert first_base == second_base
    assert with_adapter != first_base


def test_zero_adapter_is_a_no_op(engine, real_base, tmp_path):
    folder = make_adapter(tmp_path / "z", real_base, zero=True)
    engine.load_adapter("z", lora_gguf_path(folder))
    ids = engine.tokenize(PROMPT)
    np.testing.assert_allclose(engine.logits(ids, adapter="z"), engine.logits(ids), atol=1e-4)


def test_bad_adapter_files_raise_instead_of_crashing(engine, real_base, tmp_path):
    with pytest.raises(AdapterError, match="not found"):
        engine.load_adapter("x", tmp_path / "missing.gguf")
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"not a gguf at all" * 10)
    with pytest.raises(AdapterError, match="readable GGUF"):
        engine.load_adapter("x", garbage)
    with pytest.raises(AdapterError, match="model, not a LoRA"):
        engine.load_adapter("x", real_base.gguf)
    other = write_lora_gguf(lora_tensors(), tmp_path / "llama.gguf", arch="llama",
                            n_layers=18, alpha=8)
    with pytest.raises(AdapterError, match="architecture"):
        engine.load_adapter("x", other)
    assert engine.adapters == []


def test_shape_mismatch_is_rejected_by_llama_cpp_not_a_crash(engine, tmp_path):
    tensors = lora_tensors()
    key = next(k for k in tensors if "lora_A" in k)
    tensors[key] = np.ones((4, 333), np.float32)  # wrong input width for q_proj
    bad = write_lora_gguf(tensors, tmp_path / "bad.gguf", arch="gemma3", n_layers=18, alpha=8)
    with pytest.raises(AdapterError, match="rejected"):
        engine.load_adapter("bad", bad)


def test_unknown_adapter_and_quant_names(engine, tmp_path):
    with pytest.raises(AdapterError, match="not loaded"):
        engine.use("nope")
    with pytest.raises(RuntimeEngineError, match="quantization"):
        quantize_model(tmp_path / "a.gguf", tmp_path / "b.gguf", "q3_weird")


def test_prompt_longer_than_context_is_an_error(real_base):
    with Engine(real_base.gguf, EngineConfig(n_ctx=64)) as eng, \
            pytest.raises(RuntimeEngineError, match="context"):
        eng.complete("word " * 200, max_tokens=4)
