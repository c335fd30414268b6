"""The peft backend end to end on the tiny Gemma-3: real training steps, real files.

Covers the adapter folder (PEFT-standard files, metadata, training/ with config, metrics,
loss plot and diagnosed log), held-out eval loss, atomic writes on retraining, checkpoints and
--resume, and bad input failing before any model is loaded.
"""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import write_jsonl

from locollm.config import TrainConfig, merge_config
from locollm.errors import ConfigError, DataError, ModelNotFoundError
from locollm.train import checkpoint, peft_backend
from locollm.train.api import prepare, train


def tiny_cfg(tiny_model, dataset, output, **overrides) -> TrainConfig:
    values = dict(base_model=str(tiny_model), dataset=str(dataset), output=str(output),
                  lora_rank=4, max_steps=8, batch_size=4, lr=3e-3, eval_every=3, save_every=0,
                  eval_fraction=0.1, threads=1)
    return TrainConfig(**(values | overrides))


@pytest.fixture
def dataset(tmp_path, math_rows):
    return write_jsonl(tmp_path / "data.jsonl", math_rows)


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    """One 8-step run shared by the read-only assertions below."""
    from conftest import write_jsonl as write

    rows = [{"instruction": "Add the numbers.", "input": f"{a} + {7 + a % 9}",
             "output": f"The answer is {a + 7 + a % 9}."} for a in range(10, 50)]
    folder = tmp_path_factory.mktemp("trained")
    data = write(folder / "data.jsonl", rows)
    records = []
    cfg = tiny_cfg(tiny_model, data, folder / "adapter")
    result = train(cfg, on_step=records.append)
    return result, records, cfg


def interrupt_at(step: int):
    """An on_step callback that acts like Ctrl-C after ``step``."""
    def callback(record):
        if record["step"] == step:
            raise KeyboardInterrupt
    return callback


def test_adapter_folder_is_peft_standard_with_training_records(trained, tiny_model):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result, _, _ = trained
    out = result.output
    names = {p.relative_to(out).as_posix() for p in out.rglob("*")}
    assert {"adapter_config.json", "adapter_model.safetensors", "locollm.json",
            "training/dataset.jsonl", "training/train_config.yaml", "training/metrics.json",
            "training/TRAINING_LOG.md", "training/loss.png"} <= names
    assert not [n for n in names if n.startswith(".") or "README" in n]  # no temp, no card
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 4
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), out)
    assert any("lora_A" in n for n, _ in model.named_parameters())
    meta = json.loads((out / "locollm.json").read_text())
    assert meta["backend"] == "peft" and meta["prompt_format"] == "alpaca"
    assert (out / "training" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_config_yaml_is_the_exact_config_and_loads_back(trained):
    result, _, cfg = trained
    path = result.output / "training" / "train_config.yaml"
    text = path.read_text()
    assert "Backend: peft on cpu" in text  # the run's facts, as comments
    again = merge_config(TrainConfig, yaml.safe_load(text), sources=[str(path)])
    assert again == cfg


def test_held_out_loss_is_measured_at_regular_steps(trained):
    result, records, _ = trained
    assert result.n_eval == 4 and result.n_train == 36
    metrics = json.loads((result.output / "training" / "metrics.json").read_text())
    assert [e["step"] for e in metrics["eval"]] == [1, 3, 6, 8]
    assert [r["step"] for r in records if "eval_loss" in r] == [1, 3, 6, 8]
    assert [t["step"] for t in metrics["train"]] == list(range(1, 9))
    assert metrics["total_tokens"] > metrics["answer_tokens"] > 0
    assert metrics["train"][-1]["loss"] < metrics["train"][0]["loss"]
    assert all(r["tokens"] > 0 and r["steps"] == 8 for r in records)


def test_training_log_gets_a_diagnosis_with_its_numbers(trained):
    result, _, _ = trained
    log = (result.output / "training" / "TRAINING_LOG.md").read_text()
    assert log.startswith("# Training log: adapter")
    assert f"**Diagnosis: {result.diagnosis.verdict}**" in log
    assert "Remedy (guide, Phase 3):" in log
    assert f"loss_start: {result.diagnosis.numbers['loss_start']}" in log
    assert "tokens/s" in log and "peak memory" in log


def test_retraining_appends_to_the_log_and_drops_the_stale_gguf(tiny_model, dataset, tmp_path):
    out = tmp_path / "adapters" / "math"
    (out / "training").mkdir(parents=True)
    (out / "training" / "TRAINING_LOG.md").write_text("# Math log\n\nBaseline: 3/10 right.\n")
    (out / "adapter.gguf").write_bytes(b"GGUF old weights")
    (out / "README.md").write_text("our notes\n")
    train(tiny_cfg(tiny_model, dataset, out, max_steps=3, eval_fraction=0))
    train(tiny_cfg(tiny_model, dataset, out, max_steps=3, eval_fraction=0))
    log = (out / "training" / "TRAINING_LOG.md").read_text()
    assert log.startswith("# Math log\n\nBaseline: 3/10 right.\n")
    assert log.count("## Training run") == 2
    assert not (out / "adapter.gguf").exists()  # exported from the old weights
    assert (out / "README.md").read_text() == "our notes\n"


def test_interrupted_run_resumes_to_the_same_weights(tiny_model, dataset, tmp_path):
    from safetensors.torch import load_file

    full = train(tiny_cfg(tiny_model, dataset, tmp_path / "full", save_every=2))
    out = tmp_path / "cut"
    cfg = tiny_cfg(tiny_model, dataset, out, save_every=2)

    with pytest.raises(KeyboardInterrupt):
        train(cfg, on_step=interrupt_at(5))
    assert not (out / "locollm.json").exists()  # nothing that looks like a finished adapter
    state = checkpoint.read_state(out)
    assert state["step"] == 4  # lost one step: less than one save_every interval
    resumed = train(cfg, resume=True)
    assert resumed.resumed_from == 4 and resumed.history.resumed_at == [4]
    assert [t["step"] for t in resumed.history.train] == list(range(1, 9))
    a = load_file(str(full.output / "adapter_model.safetensors"))
    b = load_file(str(out / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max() < 1e-5, key
    assert checkpoint.find(out) is None  # cleared once the adapter is in place


def test_resume_with_other_settings_is_refused_before_loading(tiny_model, dataset, tmp_path,
                                                               monkeypatch):
    out = tmp_path / "cut"
    cfg = tiny_cfg(tiny_model, dataset, out, save_every=2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, on_step=interrupt_at(3))
    monkeypatch.setattr(peft_backend, "load_model", _must_not_load)
    with pytest.raises(ConfigError) as err:
        train(tiny_cfg(tiny_model, dataset, out, save_every=2, lr=1e-3), resume=True)
    assert "lr: 0.003 in the checkpoint, 0.001 now" in str(err.value)


def _must_not_load(*args, **kwargs):
    raise AssertionError("the model was loaded before the input was checked")


def test_bad_dataset_fails_with_its_line_before_loading(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(peft_backend, "load_model", _must_not_load)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "a"}\n')
    with pytest.raises(DataError) as err:
        train(tiny_cfg(tiny_model, bad, tmp_path / "out"))
    assert err.value.problem.line == 2 and "'output' is missing" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_too_long_examples_are_all_reported_before_loading(tiny_model, dataset, tmp_path,
                                                            monkeypatch, math_rows):
    monkeypatch.setattr(peft_backend, "load_model", _must_not_load)
    rows = math_rows[:12] + [dict(math_rows[0], output="12 + 35 = 47 " * 40)] * 3
    data = write_jsonl(tmp_path / "long.jsonl", rows)
    with pytest.raises(DataError) as err:
        train(tiny_cfg(tiny_model, data, tmp_path / "out", max_seq_len=64))
    assert "3 example(s) exceed max_seq_len 64" in str(err.value)
    assert err.value.problem.line == 13 and "--max-seq-len" in err.value.problem.fix


def test_missing_base_model_is_named(dataset, tmp_path):
    with pytest.raises(ModelNotFoundError) as err:
        prepare(TrainConfig(base_model=str(tmp_path / "nope.gguf"), dataset=str(dataset),
                            output=str(tmp_path / "out")))
    assert "nope.gguf" in str(err.value)


@pytest.mark.parametrize("key, value, words", [
    ("lora_rank", 0, "lora_rank 0 is outside 1..512"),
    ("lr", 0.5, "lr 0.5 is outside (0, 0.01]"),
    ("lora_dropout", 1.5, "lora_dropout 1.5 must be in [0, 1)"),
    ("eval_every", 0, "eval_every 0 must be at least 1"),
])
def test_out_of_range_settings_are_one_clear_message(key, value, words):
    with pytest.raises(ConfigError) as err:
        TrainConfig(**{key: value})
    assert words in str(err.value) and err.value.problem.fix


def test_unknown_target_modules_are_a_config_error(tiny_model, dataset, tmp_path):
    with pytest.raises(ConfigError) as err:
        train(tiny_cfg(tiny_model, dataset, tmp_path / "out", target_modules=["query_key"]))
    assert "query_key" in str(err.value) and "q_proj" in err.value.problem.fix


def test_a_failed_write_never_leaves_a_complete_looking_mix(tiny_model, dataset, tmp_path,
                                                            monkeypatch):
    from locollm.train import api

    out = tmp_path / "adapter"
    cfg = tiny_cfg(tiny_model, dataset, out, max_steps=2, eval_fraction=0)
    train(cfg)
    old_weights = (out / "adapter_model.safetensors").read_bytes()

    def broken_plot(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("locollm.train.plot.plot_loss", broken_plot)
    with pytest.raises(Exception, match="disk full"):
        train(tiny_cfg(tiny_model, dataset, out, max_steps=3, eval_fraction=0, lr=1e-2))
    # failed while staging: the previous adapter is untouched and still complete
    assert (out / "locollm.json").exists()
    assert (out / "adapter_model.safetensors").read_bytes() == old_weights
    assert not list(out.glob(".adapter.*"))
    monkeypatch.undo()

    real_replace, moved_in = api.os.replace, []

    def replace_then_die(src, dst):
        if ".adapter." not in str(dst):  # a staged file moving into the adapter folder
            moved_in.append(dst)
            if len(moved_in) == 2:
                raise OSError("killed")
        real_replace(src, dst)

    monkeypatch.setattr(api.os, "replace", replace_then_die)
    with pytest.raises(Exception, match="killed"):
        train(tiny_cfg(tiny_model, dataset, out, max_steps=3, eval_fraction=0, lr=1e-2))
    # failed half-way through moving files in: the folder no longer claims to be trained
    assert not (out / "locollm.json").exists()
