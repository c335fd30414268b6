"""The shipped math adapter: complete in the guide's layout, registered, and it works."""

from __future__ import annotations

import json

from click.testing import CliRunner
from conftest import REPO

from locollm.adapter.meta import load_meta
from locollm.adapter.registry import load_registry
from locollm.cli import cli
from locollm.evaluate.scorers import is_correct

MATH = REPO / "adapters" / "math"


def test_shipped_adapter_is_complete_and_registered(monkeypatch):
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(cli, ["adapters", "validate", "math"])
    assert result.exit_code == 0, result.output
    entry = load_registry(REPO / "adapters" / "registry.yaml").entries["math"]
    results = json.loads((MATH / "eval" / "results.json").read_text())
    base = json.loads((MATH / "eval" / "base_results.json").read_text())
    assert entry.benchmark_score == round(results["score"], 4)
    assert entry.base_model_score == round(base["score"], 4)
    assert results["score"] - base["score"] >= 0.15  # the guide's "strong"
    assert (MATH / "adapter_model.safetensors").stat().st_size < 10_000_000


def test_shipped_adapter_answers_what_the_base_gets_wrong(real_base, monkeypatch):
    from locollm.runtime.query import query

    assert load_meta(MATH).base_sha256 == real_base.sha256
    monkeypatch.chdir(REPO)
    question = "Maya has 38 shells and gets 47 more. How many shells does Maya have now?"
    tuned = query(question, adapter="math", max_tokens=96)
    base = query(question, instruction=tuned.settings["instruction"], max_tokens=96)
    assert tuned.settings["instruction"]  # the adapter's training instruction was applied
    assert is_correct(tuned.answer, "The answer is 85.")
    assert not is_correct(base.answer, "The answer is 85.")


def test_shipped_adapter_loads_with_plain_peft(real_base):
    """Portable: the folder names its base by the embedded name, not a path into a cache,
    and PEFT loads it onto the base as it is."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from locollm.models import training_dir

    config = json.loads((MATH / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == load_meta(MATH).base_model == "gemma-3-270m"
    base = AutoModelForCausalLM.from_pretrained(training_dir(real_base), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(MATH))
    lora = [n for n, _ in model.named_parameters() if "lora_A" in n]
    assert len(lora) == 18 * 7  # every layer, every projection the adapter was trained on
