"""`locollm export --vllm`: the vLLM multi-LoRA command, and the checks vLLM would apply."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from locollm.cli import cli
from locollm.errors import AdapterError
from locollm.export.vllm import VLLM_RANKS, vllm_plan

MATH = Path(__file__).resolve().parents[1] / "adapters" / "math"


@pytest.fixture
def math_copy(tmp_path) -> Path:
    folder = tmp_path / "math"
    shutil.copytree(MATH, folder, ignore=shutil.ignore_patterns("*.gguf", "eval", "training"))
    return folder


def edit_config(folder: Path, **changes) -> None:
    path = folder / "adapter_config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def test_the_shipped_adapter_satisfies_vllm(math_copy):
    from peft import LoraConfig

    plan = vllm_plan([math_copy])
    assert plan.argv[:3] == ["vllm", "serve", "google/gemma-3-270m"]
    assert "--enable-lora" in plan.argv and plan.max_lora_rank in VLLM_RANKS
    config = LoraConfig.from_pretrained(str(math_copy))  # what vLLM reads, via PEFT
    assert config.r <= plan.max_lora_rank and not config.use_dora
    module = json.loads(plan.argv[plan.argv.index("--lora-modules") + 1])
    assert module == {"name": "math", "path": str(math_copy.resolve()),
                      "base_model_name": "google/gemma-3-270m"}


def test_rank_rounds_up_to_a_vllm_value(math_copy, tmp_path):
    other = tmp_path / "units"
    shutil.copytree(math_copy, other)
    meta = json.loads((other / "locollm.json").read_text())
    (other / "locollm.json").write_text(json.dumps(meta | {"name": "units", "lora_rank": 20}))
    edit_config(other, r=20)
    plan = vllm_plan([math_copy, other])
    assert plan.max_lora_rank == 32 and [m["name"] for m in plan.lora_modules] == [
        "math", "units"]
    assert plan.argv[plan.argv.index("--max-loras") + 1] == "2"


def test_what_vllm_would_refuse_is_reported(math_copy):
    edit_config(math_copy, use_dora=True, modules_to_save=["lm_head"], bias="all", r=1000,
                target_modules=["q_proj", "embed_tokens"])
    (math_copy / "adapter_model.safetensors").unlink()
    with pytest.raises(AdapterError, match="would stop vLLM") as info:
        vllm_plan([math_copy])
    text = info.value.render()
    for word in ("DoRA", "modules_to_save", "bias", "rank 1000", "embed_tokens",
                 "adapter_model.safetensors is missing"):
        assert word in text


def test_a_base_without_a_hub_id_needs_one(math_copy):
    meta = json.loads((math_copy / "locollm.json").read_text())
    (math_copy / "locollm.json").write_text(json.dumps(meta | {"base_model": "my.gguf"}))
    with pytest.raises(AdapterError, match="--base-id"):
        vllm_plan([math_copy])
    assert vllm_plan([math_copy], base_id="org/base").base == "org/base"


def test_cli_writes_an_executable_script(math_copy, tmp_path):
    script = tmp_path / "serve.sh"
    result = CliRunner().invoke(cli, ["export", str(math_copy), "--vllm", str(script)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("vllm serve google/gemma-3-270m")
    assert os.access(script, os.X_OK) and "exec vllm serve" in script.read_text()
    assert not list(tmp_path.glob(".serve.sh.*"))  # atomic: no temporary left
