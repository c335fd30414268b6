"""The spine on the embedded default, end to end, through the CLI: data check -> train ->
export (+ numeric verify) -> query (+ baseline log) -> eval. Real model, real llama.cpp."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import write_jsonl

from locollm.cli import cli

pytestmark = pytest.mark.slow


def run(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_spine_end_to_end(tmp_path, math_rows, real_base):
    train_file = write_jsonl(tmp_path / "train.jsonl", math_rows[:32])
    bench_file = write_jsonl(tmp_path / "bench.jsonl", math_rows[32:38])
    adapter = tmp_path / "adapters" / "add"

    checked = run("data", "check", str(train_file), "--benchmark", str(bench_file))
    assert checked.exit_code == 0, checked.output

    trained = run("train", "--dataset", str(train_file), "--output", str(adapter),
                  "--max-steps", "4", "--batch-size", "4", "--lora-rank", "4", "--lr", "1e-3")
    assert trained.exit_code == 0, trained.output
    meta = json.loads((adapter / "locollm.json").read_text())
    assert meta["base_sha256"] == real_base.sha256
    assert meta["architecture"] == "gemma3" and meta["lora_rank"] == 4
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0
    metrics = json.loads((adapter / "training" / "metrics.json").read_text())
    assert len(metrics["train"]) == 4
    assert metrics["train"][-1]["loss"] < metrics["train"][0]["loss"]

    exported = run("export", str(adapter), "--gguf", "--verify")
    assert exported.exit_code == 0, exported.output
    assert "verified" in exported.output
    assert (adapter / "adapter.gguf").exists()

    log = tmp_path / "baseline.jsonl"
    for flag in ("--no-adapter", None):
        extra = ["--no-adapter"] if flag else ["--adapter", str(adapter)]
        answered = run("query", "12 + 15", *extra, "--max-tokens", "24", "--save-log", str(log))
        assert answered.exit_code == 0, answered.output
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["adapter"] for r in records] == [None, "add"]
    assert all(r["base_sha256"] == real_base.sha256 for r in records)

    ood_file = write_jsonl(tmp_path / "ood.jsonl", [
        {"instruction": "What is the capital of France?", "input": "", "output": "Paris"},
        {"instruction": "What is the opposite of hot?", "input": "", "output": "cold"}])
    evaluated = run("eval", "--adapter", str(adapter), "--benchmark", str(bench_file),
                    "--ood", str(ood_file), "--max-tokens", "32")
    assert evaluated.exit_code == 0, evaluated.output
    assert "verdict:" in evaluated.output
    results = json.loads((adapter / "eval" / "results.json").read_text())
    base_results = json.loads((adapter / "eval" / "base_results.json").read_text())
    assert results["total"] == base_results["total"] == 6
    assert len(results["items"]) == 6 and results["model"] == "add"
    ood = json.loads((adapter / "eval" / "ood_results.json").read_text())
    assert ood["base"]["total"] == ood["adapter"]["total"] == 2
    assert "out-of-domain" in evaluated.output
    failures = (adapter / "eval" / "failures.jsonl").read_text().splitlines()
    assert len(failures) == 6 - results["correct"]
