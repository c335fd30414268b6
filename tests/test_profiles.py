"""``--profile auto`` picks a hardware profile from the device and its free memory, and says why."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from locollm.cli import cli
from locollm.errors import ConfigError
from locollm.train import profiles
from locollm.train.profiles import Device, pick_profile, resolve_profile

T4 = Device("cuda", "Tesla T4", 14.7, 14.5, bf16=False)
RTX_4070 = Device("cuda", "NVIDIA GeForce RTX 4070", 11.7, 11.0, bf16=True)


def test_a_card_without_bf16_gets_the_t4_profile():
    choice = pick_profile(T4)
    assert choice.name == "t4"
    assert "Tesla T4" in choice.reason and "14.5 of 14.7 GB free" in choice.reason
    assert "no bf16" in choice.reason


def test_a_bf16_card_gets_the_consumer_gpu_profile():
    choice = pick_profile(RTX_4070)
    assert choice.name == "consumer-gpu" and "supports bf16" in choice.reason


def test_little_free_memory_is_pointed_out():
    busy = Device("cuda", "NVIDIA GeForce RTX 3060", 12.0, 2.5, bf16=True)
    choice = pick_profile(busy)
    assert choice.name == "consumer-gpu"
    assert "only 2.5 GB free" in choice.reason and "--batch-size" in choice.reason


@pytest.mark.parametrize("device, words", [
    (Device("cpu", "CPU", 16.0, 12.0, cores=8), "a CPU with 8 core(s)"),
    (Device("mps", "Apple GPU (MPS)", 16.0, 9.0, cores=10), "Apple GPU (MPS)"),
])
def test_no_cuda_gets_the_cpu_profile(device, words):
    choice = pick_profile(device)
    assert choice.name == "cpu" and words in choice.reason and "no CUDA GPU" in choice.reason


def test_this_machine_is_detected():
    device = profiles.detect_device()
    assert device.kind in ("cpu", "mps", "cuda") and device.total_gb >= device.free_gb >= 0


def test_auto_loads_the_picked_profile(monkeypatch):
    monkeypatch.setattr(profiles, "detect_device", lambda: T4)
    keys, choice, path = resolve_profile("auto")
    assert choice.name == "t4" and path.name == "t4.yaml" and keys["precision"] == "fp16"


def test_a_profile_may_be_a_yaml_file(tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text("batch_size: 3\n")
    keys, choice, found = resolve_profile(str(path))
    assert keys == {"batch_size": 3} and found == path


def test_unknown_profile_lists_the_choices():
    with pytest.raises(ConfigError) as err:
        resolve_profile("h100")
    assert "t4, consumer-gpu, cpu" in err.value.problem.fix


def test_cli_prints_what_auto_picked_and_why(monkeypatch, tmp_path):
    monkeypatch.setattr(profiles, "detect_device", lambda: RTX_4070)
    result = CliRunner().invoke(cli, ["train", "--profile", "auto", "--dataset",
                                      str(tmp_path / "missing.jsonl"), "--output",
                                      str(tmp_path / "out")])
    assert "profile consumer-gpu: NVIDIA GeForce RTX 4070" in result.output
    assert result.exit_code == 2 and "file not found" in result.output  # then the data error
