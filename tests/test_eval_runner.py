"""`locollm eval` end to end on real llama.cpp (random LoRA GGUFs on the embedded base) and, for
drift, the shipped math adapter in transformers at training precision."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, write_jsonl
from helpers_adapters import make_adapter
from test_eval_judge import judge_server

from locollm.cli import cli
from locollm.evaluate.decode import Request, decode
from locollm.evaluate.report import comparison_lines
from locollm.evaluate.runner import EvalOptions, compare
from locollm.paths import sha256_file
from locollm.prompt import PromptFormat, format_prompt

BENCH = [{"instruction": "Add the numbers.", "input": f"{a} + {b}",
          "output": f"{a} + {b} = {a + b}\nThe answer is {a + b}.", "difficulty": level}
         for a, b, level in ((12, 7, "easy"), (30, 41, "easy"), (55, 16, "hard"))]
OOD = [{"instruction": "What is the capital of France?", "output": "Paris"},
       {"instruction": "How many legs does a dog have?", "output": "4"}]


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def setup(real_base, tmp_path):
    adapter = make_adapter(tmp_path / "adapters" / "add", real_base, std=0.08, seed=1)
    bench = write_jsonl(tmp_path / "bench.jsonl", BENCH)
    ood = write_jsonl(tmp_path / "ood.jsonl", OOD)
    return adapter, bench, ood


def test_eval_reports_gap_interval_ood_verdict_and_describes_its_results(setup, real_base):
    adapter, bench, ood = setup
    result = run("eval", "--adapter", adapter, "--benchmark", bench, "--ood", ood,
                 "--max-tokens", "16", "--no-progress")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "gap      " in out and "95% CI" in out and "exact McNemar p" in out
    assert "by difficulty:" in out and "easy     n=2" in out
    assert "out-of-domain" in out and "verdict: " in out and "next: " in out
    assert "drift: not measured" in out
    res = json.loads((adapter / "eval" / "results.json").read_text())
    base = json.loads((adapter / "eval" / "base_results.json").read_text())
    for r in (res, base):
        assert r["benchmark_sha256"] == sha256_file(bench) and r["runtime"] == "llama.cpp"
        assert r["base"]["sha256"] == real_base.sha256 and r["base"]["quantization"] == "Q4_K_M"
        assert r["settings"]["max_tokens"] == 16 and r["settings"]["scorer"] == "auto"
        assert r["timings"]["wall_seconds"] > 0 and r["total"] == 3
    assert res["adapter"]["gguf_sha256"] == sha256_file(adapter / "adapter.gguf")
    assert base["adapter"] is None and res["model"] == "add" and base["model"] == "base"
    item = res["items"][0]
    assert item["prompt"] == format_prompt(BENCH[0]["instruction"], BENCH[0]["input"],
                                           PromptFormat())
    assert item["expected"] == BENCH[0]["output"] and item["scorer"] == "numeric"
    assert item["expected_answer"] == "19" and item["tokens"] > 0 and item["seconds"] > 0
    ood_data = json.loads((adapter / "eval" / "ood_results.json").read_text())
    assert ood_data["adapter"]["benchmark_sha256"] == sha256_file(ood)
    assert {i["scorer"] for i in ood_data["adapter"]["items"]} == {"contains", "numeric"}
    comparison = json.loads((adapter / "eval" / "comparison.json").read_text())
    assert comparison["verdict"]["name"] in ("strong", "moderate", "weak", "negative")
    assert comparison["gap"]["n"] == 3 and "p_value" in comparison["gap"]
    failures = (adapter / "eval" / "failures.jsonl").read_text().splitlines()
    assert len(failures) == 3 - res["correct"]


def test_single_model_path_honours_limit_and_scorer(setup, tmp_path):
    _, bench, _ = setup
    out = tmp_path / "base.json"
    result = run("eval", "--no-adapter", "--benchmark", bench, "--output", out, "--limit", "2",
                 "--max-tokens", "8", "--scorer", "exact", "--no-progress")
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["total"] == 2 and [i["line"] for i in data["items"]] == [1, 2]
    assert {i["scorer"] for i in data["items"]} == {"exact"} and data["settings"]["limit"] == 2


def test_judge_items_are_graded_during_eval(setup, tmp_path):
    adapter, _, _ = setup
    bench = write_jsonl(tmp_path / "essay.jsonl", [
        {"instruction": "Describe the sea.", "output": "Large and salty.",
         "evaluation_type": "judge", "rubric": "10 if it mentions salt"}])
    with judge_server(["SCORE: 9", "SCORE: 7", "SCORE: 8"]) as server:
        result = run("eval", "--adapter", adapter, "--benchmark", bench, "--output",
                     tmp_path / "r.json", "--max-tokens", "8", "--judge-url", server.url,
                     "--judge-model", "j", "--no-progress")
    assert result.exit_code == 0, result.output
    item = json.loads((tmp_path / "r.json").read_text())["items"][0]
    assert item["judge_runs"] == [0.9, 0.7, 0.8] and item["correct"]
    assert json.loads((tmp_path / "r.json").read_text())["settings"]["judge"]["model"] == "j"
    assert "api_key" not in json.loads((tmp_path / "r.json").read_text())["settings"]["judge"]


def test_eval_refuses_judge_items_without_a_judge_before_decoding(setup, tmp_path):
    adapter, _, _ = setup
    bench = write_jsonl(tmp_path / "essay.jsonl", [
        {"instruction": "Describe the sea.", "output": "x", "evaluation_type": "judge"}])
    result = CliRunner().invoke(cli, ["eval", "--adapter", str(adapter), "--benchmark",
                                      str(bench)])
    assert result.exit_code == 2 and "need an LLM judge" in result.output
    assert not (adapter / "eval" / "results.json").exists()


class Recorder:
    """An engine without complete_batch: decode must fall back to complete, in order."""

    def __init__(self, engine) -> None:
        self.engine, self.calls = engine, []

    def complete(self, prompt, **kwargs):
        self.calls.append(prompt)
        return self.engine.complete(prompt, **kwargs)


def test_decode_falls_back_to_one_by_one_in_order(real_base):
    from locollm.runtime.engine import Engine

    with Engine(real_base.gguf) as engine:
        prompts = [format_prompt("Add.", f"{i} + 1") for i in range(3)]
        recorder = Recorder(engine)
        seen = []
        out = decode(recorder, [Request(p, None, 6) for p in prompts],
                     lambda i, c: seen.append(i))
        assert recorder.calls == prompts and seen == [0, 1, 2] and len(out) == 3
        if hasattr(engine, "complete_batch"):  # the batching engine: same greedy answers
            batched = decode(engine, [Request(p, None, 6) for p in prompts])
            assert [c.text for c in batched] == [c.text for c in out]


# ----------------------------------------------------------------------- training precision
MATH = REPO / "adapters" / "math"


@pytest.mark.slow
def test_drift_sets_the_served_gguf_beside_training_precision(real_base, tmp_path):
    bench = write_jsonl(tmp_path / "bench.jsonl", [
        json.loads(line) for line in (MATH / "eval" / "benchmark.jsonl").read_text()
        .splitlines()[:2]])
    folder = tmp_path / "math"  # a copy: eval writes its folder's eval/ files
    shutil.copytree(MATH, folder, ignore=shutil.ignore_patterns("eval"))
    out = tmp_path / "out"
    both = compare(folder, bench, out_dir=out, options=EvalOptions(max_tokens=40,
                                                                   runtime="both"))
    assert both.drift is not None and both.drift.served.total == 2
    trained = json.loads((out / "results_transformers.json").read_text())
    assert trained["runtime"] == "transformers" and trained["base"]["precision"] == "float32"
    assert trained["adapter"]["peft_sha256"] == sha256_file(MATH / "adapter_model.safetensors")
    assert trained["benchmark_sha256"] == sha256_file(bench)
    text = "\n".join(comparison_lines(both))
    assert "drift: served GGUF (llama.cpp, Q4_K_M) vs training precision" in text
    assert "served GGUF" in text and "training precision" in text
    # a later llama.cpp-only eval on the same items picks the stored training-precision run up
    again = compare(folder, bench, out_dir=out, options=EvalOptions(max_tokens=40))
    assert again.drift is not None
    assert again.drift.trained.score == both.drift.trained.score
    other = compare(folder, bench, out_dir=out, options=EvalOptions(max_tokens=20))
    assert other.drift is None and "another --max-tokens" in other.drift_note


def test_transformers_runtime_needs_peft_weights(setup):
    adapter, bench, _ = setup  # a LoRA GGUF without PEFT files
    result = CliRunner().invoke(cli, ["eval", "--adapter", str(adapter), "--benchmark",
                                      str(bench), "--runtime", "transformers"])
    assert result.exit_code == 2 and "adapter_model.safetensors" in result.output
    assert not Path(adapter / "eval" / "results_transformers.json").exists()
