"""``locollm export --vllm``: the command that serves the same adapter folders on vLLM.

vLLM's OpenAI server takes LoRA adapters as PEFT folders (``adapter_config.json`` +
``adapter_model.safetensors``), which is what an adapter folder holds, on the base's Hugging
Face weights (not the GGUF). Before writing the command the folders are checked against the
rules vLLM applies when it loads them (its ``PEFTHelper`` and ``LoRAConfig``): a plain LoRA (no
DoRA, no bias, no ``modules_to_save``), a rank within ``--max-lora-rank`` (one of vLLM's
allowed values), target modules vLLM can put a LoRA on, and one base for all of them, given as
a hub id. The command is printed and written as an executable script, atomically.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..adapter.meta import load_meta
from ..errors import AdapterError, Problem

# vLLM's LoRAConfig accepts these --max-lora-rank values.
VLLM_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# Linear layers of a decoder that vLLM's LoRA layers cover (q/k/v and gate/up are packed).
VLLM_MODULES = {"q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "gate_proj", "up_proj",
                "down_proj", "gate_up_proj"}
# Hub ids of the embedded bases (vLLM serves Hugging Face weights).
HUB_IDS = {"gemma-3-270m": "google/gemma-3-270m"}


@dataclass
class VllmPlan:
    """The vLLM command for a set of adapter folders."""

    base: str  # the hub id vLLM serves
    lora_modules: list[dict]  # vLLM's --lora-modules entries (name, path, base_model_name)
    max_lora_rank: int
    argv: list[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        """The command line, quoted for a POSIX shell."""
        return " ".join(shlex.quote(a) for a in self.argv)


def hub_id(base_model: str, override: str | None = None) -> str:
    """The Hugging Face id of an adapter's base (``override`` wins)."""
    if override:
        return override
    if base_model in HUB_IDS:
        return HUB_IDS[base_model]
    if "/" in base_model and not Path(base_model).exists() and not base_model.endswith(".gguf"):
        return base_model
    raise AdapterError(f"base {base_model!r} has no Hugging Face id vLLM could load",
                       fix="pass --base-id ORG/NAME (the model the adapter was trained from)")


def check_folder(folder: Path) -> list[Problem]:
    """What stops vLLM from loading ``folder`` as a LoRA adapter (empty: nothing)."""
    problems = []
    config_file = folder / "adapter_config.json"
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        if not (folder / name).is_file():
            problems.append(Problem(f"{name} is missing (vLLM loads the PEFT files)",
                                    folder, fix="train the adapter, or copy its PEFT files"))
    if not config_file.is_file():
        return problems
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except ValueError as exc:
        return [*problems, Problem(f"unreadable JSON ({exc})", config_file)]
    if config.get("peft_type", "LORA") != "LORA":
        problems.append(Problem(f"peft_type is {config.get('peft_type')!r}, vLLM serves LORA",
                                config_file))
    if config.get("use_dora"):
        problems.append(Problem("DoRA adapters are not supported by vLLM", config_file,
                                fix="retrain without use_dora"))
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        problems.append(Problem("LoRA bias needs vLLM's --enable-lora-bias; locollm "
                                "trains without", config_file, fix="retrain with bias none"))
    if config.get("modules_to_save"):
        problems.append(Problem("vLLM does not load modules_to_save", config_file,
                                fix="retrain without modules_to_save"))
    rank = int(config.get("r", 0))
    if not 1 <= rank <= VLLM_RANKS[-1]:
        problems.append(Problem(f"rank {rank} is outside vLLM's 1..{VLLM_RANKS[-1]}",
                                config_file))
    targets = config.get("target_modules") or []
    targets = [targets] if isinstance(targets, str) else targets
    unsupported = sorted(set(targets) - VLLM_MODULES)
    if unsupported:
        problems.append(Problem(f"vLLM puts no LoRA on {', '.join(unsupported)}", config_file,
                                fix="target the attention and MLP projections only"))
    return problems


def vllm_plan(folders: list[Path], *, base_id: str | None = None, port: int = 8000,
              host: str = "127.0.0.1") -> VllmPlan:
    """Check ``folders`` and build the ``vllm serve`` command serving them all."""
    if not folders:
        raise AdapterError("no adapter folders to serve", fix="name at least one adapter")
    problems: list[Problem] = []
    metas = [load_meta(f) for f in folders]
    bases = {hub_id(m.base_model, base_id) for m in metas}
    if len(bases) > 1:
        raise AdapterError(f"the adapters are for different bases ({', '.join(sorted(bases))})"
                           , fix="export the adapters of one base together")
    for folder in folders:
        problems += check_folder(Path(folder))
    if problems:
        raise AdapterError(f"{len(problems)} problem(s) would stop vLLM loading the adapters",
                           problems=problems)
    base = bases.pop()
    ranks = [m.lora_rank for m in metas]
    max_rank = next(r for r in VLLM_RANKS if r >= max(ranks))
    modules = [{"name": m.name, "path": str(Path(f).resolve()), "base_model_name": base}
               for m, f in zip(metas, folders, strict=True)]
    argv = ["vllm", "serve", base, "--host", host, "--port", str(port), "--enable-lora",
            "--max-lora-rank", str(max_rank), "--max-loras", str(len(modules)),
            "--lora-modules", *(json.dumps(m, separators=(",", ":")) for m in modules)]
    return VllmPlan(base, modules, max_rank, argv)


def write_script(plan: VllmPlan, path: Path) -> Path:
    """Write the command as an executable shell script (atomically)."""
    import os

    from ..paths import atomic_write

    text = ("#!/bin/sh\n# Serve these locollm adapters on vLLM's OpenAI server "
            "(written by `locollm export --vllm`).\n"
            f"exec {plan.command} \"$@\"\n")
    atomic_write(path, text)
    os.chmod(path, 0o755)
    return path
