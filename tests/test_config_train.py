"""Every shipped YAML config loads; layers merge in the documented order; bad values are named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from locollm.config import TrainConfig, merge_config, read_yaml
from locollm.errors import ConfigError
from locollm.train.settings import build_train_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_the_hardware_profiles_and_the_demo_ship():
    assert {"t4.yaml", "consumer-gpu.yaml", "cpu.yaml", "demo.yaml"} <= {p.name for p in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = merge_config(TrainConfig, read_yaml(path), sources=[str(path)])
    assert isinstance(cfg, TrainConfig)
    assert path.read_text().startswith("#")  # commented, as configs/ promises
    assert set(yaml.safe_load(path.read_text())) <= set(TrainConfig().to_dict())


def test_t4_profile_is_fp16_4bit_and_fits_its_memory():
    path = CONFIGS[0].parent / "t4.yaml"
    t4 = merge_config(TrainConfig, read_yaml(path), sources=[str(path)])
    assert t4.precision == "fp16" and t4.load_in_4bit and t4.gradient_checkpointing
    assert t4.batch_size * t4.grad_accum >= 8 and t4.max_seq_len >= 1024


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_precedence_defaults_profile_domain_config_flags(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "configs" / "domains" / "math.yaml", "lr: 3.0e-4\nbatch_size: 6\n")
    extra = _write(tmp_path / "mine.yaml", "batch_size: 5\nlora_rank: 8\n")
    cfg, choice = build_train_config("math", extra, "t4", lora_rank=32, epochs=None)
    assert cfg.lora_rank == 32  # flag beats --config
    assert cfg.batch_size == 5  # --config beats the domain config
    assert cfg.lr == 3e-4  # the domain config beats the defaults
    assert cfg.precision == "fp16" and cfg.grad_accum == 4  # from the profile
    assert cfg.epochs == 3.0  # a flag left unset never overrides
    assert cfg.dataset == "adapters/math/training/dataset.jsonl"
    assert choice.name == "t4"


def test_domain_config_beats_the_profile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "configs" / "domains" / "math.yaml", "batch_size: 2\n")
    cfg, _ = build_train_config("math", None, "cpu")
    assert cfg.batch_size == 2 and cfg.backend == "peft"


def test_yaml_exponents_without_a_dot_are_numbers(tmp_path):
    path = _write(tmp_path / "c.yaml", "lr: 2e-4\nepochs: 3\n")
    cfg = merge_config(TrainConfig, read_yaml(path), sources=[str(path)])
    assert cfg.lr == 2e-4 and cfg.epochs == 3.0


@pytest.mark.parametrize("text, words", [
    ("lora_rank: sixteen\n", "lora_rank must be a whole number, got 'sixteen'"),
    ("load_in_4bit: maybe\n", "load_in_4bit must be true or false"),
    ("target_modules: 3\n", "target_modules must be a list"),
    ("lora_rnak: 8\n", "unknown config key(s) ['lora_rnak']"),
])
def test_bad_values_name_the_key_and_the_file(tmp_path, text, words):
    path = _write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as err:
        merge_config(TrainConfig, read_yaml(path), sources=[str(path)])
    assert words in str(err.value) and str(path) in str(err.value)
