"""The guide's real path on a CPU: an adapter trained on a Hugging Face model folder (not a
GGUF), exported as LoRA GGUF and merged GGUF with verification, served over HTTP on the base
converted with ``locollm models convert``, and evaluated (every step a real component)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import write_jsonl
from helpers_hf import parse_modelfile
from tiny_archs import ARCHS, build_arch_model

from locollm.cli import cli

pytestmark = pytest.mark.slow


def _run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, shared_models):
    """A project folder with a tiny Qwen 2 chat model, a trained adapter on it and the base
    converted to converted.gguf."""
    from helpers_adapters import locollm_env

    root = tmp_path_factory.mktemp("project")
    build_arch_model("qwen2", root / "tiny-qwen2")
    rows = [{"instruction": "Add the numbers.", "input": f"{a} + {b}",
             "output": f"The answer is {a + b}."} for a in range(10, 40) for b in (2, 5)]
    write_jsonl(root / "adapters" / "sums" / "training" / "dataset.jsonl", rows[:50])
    write_jsonl(root / "adapters" / "sums" / "eval" / "benchmark.jsonl", rows[50:56])
    with locollm_env(root, shared_models), pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        _run("train", "--base-model", "tiny-qwen2", "--domain", "sums", "--max-steps", "12",
             "--lora-rank", "8", "--lr", "5e-3", "--eval-fraction", "0", "--save-every", "0")
        _run("models", "convert", "tiny-qwen2", "-o", "converted.gguf", "--quant", "q8_0",
             "--pre-tokenizer", ARCHS["qwen2"].pre_tokenizer, "--verify")
        yield root


def test_trained_on_the_hf_folder_with_a_portable_base_name(workspace):
    folder = workspace / "adapters" / "sums"
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "tiny-qwen2"  # as given, not a cache path
    meta = json.loads((folder / "locollm.json").read_text())
    assert meta["base_sha256"] is None and meta["prompt_format"].startswith("chat:")


def test_export_gguf_and_merged_verified_with_runners(workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    out = _run("export", "sums", "--gguf", "--merged", "--quant", "q8_0", "--verify",
               "--base-model", "converted.gguf", "--pre-tokenizer", "qwen2")
    folder = workspace / "adapters" / "sums"
    for name in ("adapter.gguf", "sums-merged-q8_0.gguf", "Modelfile", "Modelfile.merged",
                 "llama-server.sh", "llama-server.merged.sh"):
        assert (folder / name).exists(), name
    assert "verified LoRA GGUF" in out and "verified merged GGUF" in out
    assert out.count("generation stops") == 2
    values = dict(parse_modelfile((folder / "Modelfile").read_text()))
    assert (folder / values["model"]).resolve() == (workspace / "converted.gguf").resolve()
    assert "<|im_end|>" in [v for k, v in parse_modelfile(
        (folder / "Modelfile").read_text()) if k == "stop"]


def test_served_on_the_converted_base_and_evaluated(workspace, monkeypatch):
    from helpers_adapters import serving
    from openai import OpenAI

    from locollm.runtime.session import open_runtime

    monkeypatch.chdir(workspace)
    runtime = open_runtime(["sums"], base_model="converted.gguf")
    try:
        with serving(runtime) as server:
            client = OpenAI(base_url=server.url, api_key="none")
            models = {m.id for m in client.models.list().data}
            assert "sums" in models
            reply = client.chat.completions.create(
                model="sums", messages=[{"role": "user", "content": "12 + 5"}], max_tokens=8)
            assert reply.choices[0].message.content is not None
    finally:
        runtime.close()
    out = _run("eval", "--adapter", "sums", "--base-model", "converted.gguf",
               "--max-tokens", "12")
    assert "  adapter  " in out and "verdict: " in out
    results = json.loads((workspace / "adapters" / "sums" / "eval" / "results.json")
                         .read_text())
    assert results["total"] == 6
