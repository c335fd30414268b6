"""`locollm adapters validate` checks every measured field of an entry against the files, and
refuses eval results that rest on another benchmark, part of it, or another adapter."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers_adapters import make_adapter, make_guide_layout, write_result

from locollm.adapter.register import register
from locollm.adapter.registry import load_registry, registry_path, write_entry
from locollm.adapter.validate import validate
from locollm.cli import cli


@pytest.fixture
def root(real_base, tmp_path):
    """adapters/ with a registered math adapter that validates."""
    root = tmp_path / "adapters"
    make_guide_layout(make_adapter(root / "math", real_base))
    register("math", adapters_root=root, authors=("Team Pi",), description="Sums",
             router_keywords=("add",))
    assert validate(["math"], adapters_root=root).ok
    return root


def problems(root) -> str:
    return "\n".join(str(p) for p in validate(["math"], adapters_root=root).adapters["math"])


@pytest.mark.parametrize(("field", "value", "message"), [
    ("benchmark_score", 0.73, "stale: benchmark_score 0.73 (eval: 0.7200)"),
    ("benchmark_score", 0.7201, "stale: benchmark_score 0.7201"),  # even a small edit
    ("base_model_score", 0.38, "stale: base_model_score 0.38"),
    ("size_mb", 24.0, "stale: size_mb 24.0 (folder: 2.0)"),
    ("quantization", "Q8_0", "stale: quantization 'Q8_0' (eval ran on Q4_K_M)"),
    ("lora_rank", 16, "stale: lora_rank 16 (folder: 4)"),
])
def test_a_hand_edited_measured_field_is_caught(root, field, value, message):
    entry = load_registry(registry_path(root)).entries["math"]
    setattr(entry, field, value)
    if field in ("benchmark_score", "base_model_score"):  # keep the entry self-consistent
        from locollm.adapter.registry import improvement

        entry.improvement = improvement(entry.benchmark_score, entry.base_model_score)
    write_entry(registry_path(root), "math", entry)
    assert message in problems(root)


def test_a_hand_edited_improvement_is_caught(root):
    entry = load_registry(registry_path(root)).entries["math"]
    assert entry.improvement == "+32.0 pts (+80.0%)"
    entry.improvement = "+32.1 pts (+80.1%)"  # within the entry's own rounding tolerance
    write_entry(registry_path(root), "math", entry)
    assert "stale: improvement '+32.1 pts (+80.1%)' (eval: '+32.0 pts (+80.0%)')" in \
        problems(root)
    entry.improvement = "+80.0%"  # the guide's relative-only form: register writes points
    write_entry(registry_path(root), "math", entry)
    assert "stale: improvement '+80.0%'" in problems(root)


def test_results_on_another_benchmark_are_refused(root):
    bench = root / "math" / "eval" / "benchmark.jsonl"
    bench.write_text(bench.read_text().replace("0 + 3", "0 + 4", 1))
    text = problems(root)
    assert "results.json: math: math result was computed on another benchmark" in text
    assert "base_results.json: math: base result was computed on another benchmark" in text
    assert "fix: run: locollm eval --adapter math" in text


def test_results_on_another_ood_set_are_refused(root):
    ood = root / "math" / "eval" / "ood.jsonl"
    ood.write_text(ood.read_text() + '{"instruction": "q", "output": "1"}\n')
    assert "ood_results.json: math: base result was computed on another benchmark" in \
        problems(root)


def test_results_without_a_benchmark_hash_are_refused(root):
    path = root / "math" / "eval" / "results.json"
    data = json.loads(path.read_text())
    del data["benchmark_sha256"]
    path.write_text(json.dumps(data))
    assert "does not record the sha256 of the benchmark" in problems(root)


def test_a_limited_run_or_an_edited_score_is_refused(root):
    folder = root / "math"
    write_result(folder / "eval" / "results.json", "math", 30, 40)  # 40 of the 50 items
    register("math", adapters_root=root)
    assert "scored 40 of the 50 items of benchmark.jsonl" in problems(root)
    write_result(folder / "eval" / "results.json", "math", 36, 50)
    path = folder / "eval" / "results.json"
    data = json.loads(path.read_text())
    data["score"], data["correct"] = 0.9, 45  # edited by hand; the items still say 36
    path.write_text(json.dumps(data))
    register("math", adapters_root=root)
    assert "score 0.9000 (45/50) does not match its own items" in problems(root)


def test_results_of_another_adapter_version_are_refused(root):
    weights = root / "math" / "adapter_model.safetensors"
    weights.write_bytes(b"\1" * 2_000_000)  # retrained, not re-evaluated
    assert "computed with another version of the adapter" in problems(root)


def test_register_refreshes_a_stale_entry_and_keeps_its_written_fields(root):
    from locollm.adapter.registry import validate_registry

    path = registry_path(root)
    path.write_text(path.read_text().replace('"+32.0 pts (+80.0%)"', '"+3592.8%"'))
    assert validate_registry(path)[1]["math"]  # the old relative figure: the entry is refused
    again = register("math", adapters_root=root)
    assert (again.entry.authors, again.entry.description) == (["Team Pi"], "Sums")
    assert again.entry.improvement == "+32.0 pts (+80.0%)" and again.problems == []
    assert validate(["math"], adapters_root=root).ok


def test_cli_validate_fails_on_a_stale_entry(root, monkeypatch):
    monkeypatch.chdir(root.parent)
    assert CliRunner().invoke(cli, ["adapters", "validate", "math"]).exit_code == 0
    entry = load_registry(registry_path(root)).entries["math"]
    entry.size_mb = 3.0
    write_entry(registry_path(root), "math", entry)
    result = CliRunner().invoke(cli, ["adapters", "validate", "math"])
    assert result.exit_code == 1 and "size_mb 3.0" in result.output
