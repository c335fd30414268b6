"""Hardware profiles: commented YAML files in ``configs/`` that set batch size, precision and
memory savers for a kind of machine, and ``--profile auto``, which picks one for this machine.

Shipped profiles: ``t4`` (Colab's free Tesla T4: fp16, 4-bit base), ``consumer-gpu`` (8-12 GB
cards: bf16 where supported) and ``cpu``. A profile only sets TrainConfig keys; it is the
lowest layer above the defaults: defaults < profile < domain config < --config < flags.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..config import read_yaml
from ..errors import ConfigError

PROFILES = ("t4", "consumer-gpu", "cpu")
MIN_FREE_GB = 5.0  # below this the GPU profiles' batch sizes may not fit a 3B model


@dataclass(frozen=True)
class Device:
    """What ``--profile auto`` looks at."""

    kind: str  # cuda, mps or cpu
    name: str
    total_gb: float
    free_gb: float
    bf16: bool = False
    cores: int = 1


@dataclass(frozen=True)
class Choice:
    """A picked profile and why, for the user to read."""

    name: str
    reason: str


def configs_dir() -> Path:
    """The ``configs/`` folder: next to the package in a checkout, else under the cwd."""
    for folder in (Path(__file__).resolve().parents[2] / "configs", Path.cwd() / "configs"):
        if folder.is_dir():
            return folder
    raise ConfigError("cannot find the configs/ folder with the hardware profiles",
                      fix="run from the locollm checkout, or pass --profile path/to/file.yaml")


def profile_path(name: str) -> Path:
    """A shipped profile by name, or a YAML file by path."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError("profile file not found", file=path)
        return path
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}",
                          fix=f"use auto, one of {', '.join(PROFILES)}, or a YAML file")
    return configs_dir() / f"{name}.yaml"


def _available_ram_gb() -> tuple[float, float]:
    """(total, available) RAM in GB; zeros where the OS won't say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            info = {line.split(":")[0]: float(line.split()[1]) for line in fh}
        return info["MemTotal"] / 2**20, info.get("MemAvailable", info["MemFree"]) / 2**20
    except (OSError, KeyError, ValueError, IndexError):
        return 0.0, 0.0


def detect_device() -> Device:
    """The device training would use, with its memory (imports torch)."""
    import torch

    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info(0)
        return Device("cuda", torch.cuda.get_device_name(0), total / 2**30, free / 2**30,
                      torch.cuda.is_bf16_supported())
    total, free = _available_ram_gb()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        os.cpu_count() or 1
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return Device("mps", "Apple GPU (MPS)", total, free, cores=cores)
    return Device("cpu", "CPU", total, free, cores=cores)


def pick_profile(device: Device) -> Choice:
    """The profile for ``device``, with the reason in words."""
    memory = f"{device.free_gb:.1f} of {device.total_gb:.1f} GB free"
    if device.kind == "cuda":
        if device.bf16:
            name, why = "consumer-gpu", "supports bf16"
        else:
            name, why = "t4", "has no bf16, so fp16 (T4, V100 and RTX 20xx class)"
        reason = f"{device.name} ({memory}) {why}"
        if device.free_gb < MIN_FREE_GB:
            reason += (f"; only {device.free_gb:.1f} GB free, below the {MIN_FREE_GB:.0f} GB "
                       "the profile is sized for: lower --batch-size if it runs out of memory")
        return Choice(name, reason)
    where = "an Apple GPU (MPS), which the peft backend trains on" if device.kind == "mps" \
        else f"a CPU with {device.cores} core(s)"
    return Choice("cpu", f"no CUDA GPU: {where}; RAM {memory}")


def resolve_profile(name: str) -> tuple[dict, Choice, Path]:
    """The profile's TrainConfig keys, what was picked and why, and the file they came from."""
    choice = pick_profile(detect_device()) if name == "auto" else Choice(name, "asked for")
    path = profile_path(choice.name)
    return read_yaml(path), choice, path
