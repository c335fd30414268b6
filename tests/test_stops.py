"""Generation stops after an answer (the endless-output bug after export): the token that
closes a turn in the GGUF's chat template must be one llama.cpp ends generation on.

The models here are rigged to predict the end-of-turn token at every position, so llama.cpp
stops at once exactly when that token is an end-of-generation token, and runs on to
max_tokens when it is not.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from helpers_hf import rig_to_emit
from tiny_archs import ARCHS, build_arch_model

from locollm.errors import CheckFailed
from locollm.export.convert import convert_folder
from locollm.export.verify import answer_end, check_stops
from locollm.runtime.engine import Engine

pytestmark = pytest.mark.slow

# Phi-3's format with an end-of-turn marker llama.cpp does not know by name
ODD_TURN = dataclasses.replace(
    ARCHS["phi3"], name="phi3-odd",
    chat_template=ARCHS["phi3"].chat_template.replace("<|end|>", "<|turn_done|>"),
    markers=("<|endoftext|>", "<|user|>", "<|assistant|>", "<|turn_done|>"))


def _rigged(tmp_path, arch_name: str, end: str):
    from transformers import AutoTokenizer

    if arch_name == ODD_TURN.name:
        ARCHS[ODD_TURN.name] = ODD_TURN
    try:
        folder = build_arch_model(arch_name, tmp_path / arch_name)
    finally:
        ARCHS.pop(ODD_TURN.name, None)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rig_to_emit(folder, tokenizer.convert_tokens_to_ids(end))
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Add 2 and 3."}],
                                           tokenize=False, add_generation_prompt=True)
    return folder, prompt


def _generate(gguf_file, prompt):
    with Engine(gguf_file) as eng:
        return eng.complete(prompt, max_tokens=12)


def test_a_known_end_of_turn_stops_generation(tmp_path):
    folder, prompt = _rigged(tmp_path, "phi3", "<|end|>")
    out = convert_folder(folder, tmp_path / "phi3.gguf", "f32")
    assert answer_end(out).startswith("<|end|>")
    result = check_stops(out)
    assert result.passed and result.token_text == "<|end|>"
    done = _generate(out, prompt)
    assert done.finish_reason == "stop" and done.completion_tokens <= 1


def test_an_end_of_turn_llama_cpp_does_not_stop_on_fails_and_the_fix_works(tmp_path):
    folder, prompt = _rigged(tmp_path, ODD_TURN.name, "<|turn_done|>")
    out = convert_folder(folder, tmp_path / "odd.gguf", "f32")
    with pytest.raises(CheckFailed, match="will not stop") as err:
        check_stops(out)
    assert "<|turn_done|>" in err.value.problem.fix
    endless = _generate(out, prompt)
    assert endless.finish_reason == "length" and endless.completion_tokens == 12
    config_file = folder / "tokenizer_config.json"  # the fix the error names
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "eos_token": "<|turn_done|>"}))
    fixed = convert_folder(folder, tmp_path / "fixed.gguf", "f32")
    assert check_stops(fixed).passed
    assert _generate(fixed, prompt).finish_reason == "stop"
