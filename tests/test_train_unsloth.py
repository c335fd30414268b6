"""The unsloth backend's code path, with only Unsloth itself faked.

There is no GPU here, so a fake ``unsloth`` module (tests/fake_unsloth.py) goes into
``sys.modules``: it loads the tiny model with transformers, adds LoRA with PEFT and masks
prompts the way ``train_on_responses_only`` does, recording how it was called and refusing
keywords the real API (unsloth 2026.10.9) does not take. Everything else is real: trl's
SFTTrainer trains, the Trainer writes and resumes checkpoints, and locollm writes the adapter.
"""

from __future__ import annotations

import json
import subprocess
import sys

import fake_unsloth as fake_unsloth_modules
import pytest
from conftest import write_jsonl

from locollm.config import TrainConfig
from locollm.errors import ConfigError
from locollm.prompt import PromptFormat
from locollm.train import checkpoint
from locollm.train.api import choose_backend, train
from locollm.train.unsloth_backend import training_texts


@pytest.fixture
def fake_unsloth(monkeypatch):
    """A stand-in ``unsloth`` package (tests/fake_unsloth.py); returns the calls it got."""
    calls: dict = {}
    for name, module in fake_unsloth_modules.build(calls).items():
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def unsloth_cfg(tiny_model, dataset, output, **overrides) -> TrainConfig:
    values = dict(base_model=str(tiny_model), dataset=str(dataset), output=str(output),
                  backend="unsloth", precision="fp32", lora_rank=4, max_steps=6, batch_size=4,
                  lr=3e-3, eval_every=3, save_every=0, eval_fraction=0.1, max_seq_len=128)
    return TrainConfig(**(values | overrides))


def test_unsloth_path_follows_the_documented_recipe(fake_unsloth, tiny_model, tmp_path,
                                                    math_rows):
    data = write_jsonl(tmp_path / "data.jsonl", math_rows)
    records = []
    result = train(unsloth_cfg(tiny_model, data, tmp_path / "adapter"), on_step=records.append)
    loaded = fake_unsloth["from_pretrained"]
    assert loaded["load_in_4bit"] is True and loaded["max_seq_length"] == 128
    assert (loaded["use_gradient_checkpointing"], loaded["random_state"]) == ("unsloth", 42)
    peft = fake_unsloth["get_peft_model"]
    assert peft["use_gradient_checkpointing"] == "unsloth" and peft["random_state"] == 42
    assert (peft["r"], peft["lora_alpha"]) == (4, 8)
    assert fake_unsloth["train_on_responses_only"] == {
        "instruction_part": "### Instruction:\n", "response_part": "### Response:\n"}
    assert result.backend == "unsloth"
    assert [r["step"] for r in records] == list(range(1, 7))
    assert [e["step"] for e in result.history.eval] == [3, 6]
    assert result.history.train[-1]["loss"] < result.history.train[0]["loss"]


def test_both_backends_write_the_same_adapter_folder(fake_unsloth, tiny_model, tmp_path,
                                                     math_rows):
    data = write_jsonl(tmp_path / "data.jsonl", math_rows)
    folders = {}
    for backend in ("unsloth", "peft"):
        cfg = unsloth_cfg(tiny_model, data, tmp_path / backend, backend=backend, max_steps=2)
        folders[backend] = train(cfg).output
    listing = {b: sorted(p.relative_to(f).as_posix() for p in f.rglob("*"))
               for b, f in folders.items()}
    assert listing["unsloth"] == listing["peft"]
    configs = {b: json.loads((f / "adapter_config.json").read_text())
               for b, f in folders.items()}
    for key in ("r", "lora_alpha", "target_modules", "peft_type", "task_type"):
        assert configs["unsloth"][key] == configs["peft"][key], key
    metas = {b: json.loads((f / "locollm.json").read_text()) for b, f in folders.items()}
    assert metas["unsloth"]["backend"] == "unsloth"
    assert metas["unsloth"]["prompt_format"] == metas["peft"]["prompt_format"]


def test_unsloth_run_resumes_from_the_trainer_checkpoint(fake_unsloth, tiny_model, tmp_path,
                                                          math_rows):
    data = write_jsonl(tmp_path / "data.jsonl", math_rows)
    cfg = unsloth_cfg(tiny_model, data, tmp_path / "adapter", save_every=3)

    def interrupt(record):
        if record["step"] == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, on_step=interrupt)
    state = checkpoint.read_state(cfg.output)
    assert state["backend"] == "unsloth" and state["step"] == 3
    assert not (tmp_path / "adapter" / "locollm.json").exists()
    result = train(cfg, resume=True)
    assert result.history.resumed_at == [3]
    assert [t["step"] for t in result.history.train] == list(range(1, 7))
    assert checkpoint.find(cfg.output) is None


def test_training_text_is_the_shared_prompt_format():
    from locollm.data.jsonl import Example

    text = training_texts([Example("Add the numbers.", "2 + 3", "5")], PromptFormat(), "<eos>")
    assert text == ["### Instruction:\nAdd the numbers.\n\n### Input:\n2 + 3\n\n"
                    "### Response:\n5<eos>"]


def test_auto_backend_needs_cuda_and_the_gpu_extra(monkeypatch, fake_unsloth):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_backend(TrainConfig(backend="auto")) == "unsloth"
    assert choose_backend(TrainConfig(backend="peft")) == "peft"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_backend(TrainConfig(backend="auto")) == "peft"


def test_unsloth_backend_without_the_gpu_extra_says_how_to_get_it(monkeypatch):
    monkeypatch.delitem(sys.modules, "unsloth", raising=False)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(ConfigError) as err:
        choose_backend(TrainConfig(backend="unsloth"))
    assert "locollm[gpu]" in err.value.problem.fix
    assert choose_backend(TrainConfig(backend="auto")) == "peft"


def test_cpu_training_never_imports_unsloth(tiny_model, tmp_path, math_rows):
    data = write_jsonl(tmp_path / "data.jsonl", math_rows)
    code = ("import sys; from locollm.config import TrainConfig; from locollm.train import train;"
            f"train(TrainConfig(base_model={str(tiny_model)!r}, dataset={str(data)!r}, "
            f"output={str(tmp_path / 'out')!r}, max_steps=1, batch_size=4, lora_rank=4)); "
            "print('unsloth' in sys.modules, 'trl' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split()[-2:] == ["False", "False"]
    assert (tmp_path / "out" / "locollm.json").exists()
