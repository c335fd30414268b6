"""adapters/registry.yaml: validation with lines, atomic entry updates, register, validate."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers_adapters import full_entry, make_adapter, make_guide_layout, write_result

from locollm.adapter.register import gguf_quantization, register
from locollm.adapter.registry import (
    HEADER,
    improvement,
    load_registry,
    render_entry,
    validate_registry,
    write_entry,
)
from locollm.adapter.validate import validate
from locollm.cli import cli
from locollm.errors import AdapterError, ConfigError

REPO = Path(__file__).resolve().parents[1]

GUIDE_EXAMPLE = """\
your-domain:
  version: "1.0.0"
  base_model: "Qwen/Qwen2.5-3B-Instruct"
  quantization: "Q4_K_M"
  lora_rank: 16
  created: "2026-S2"
  authors: ["Your Team Name, ISYS6020"]
  benchmark_score: 0.72
  base_model_score: 0.41
  improvement: "+75.6%"
  description: "One-line description of what this adapter does"
  tags: ["relevant", "keywords"]
  size_mb: 24
  router_keywords: ["trigger", "words", "for", "keyword", "router"]
"""


def test_shipped_registry_loads():
    registry = load_registry(REPO / "adapters" / "registry.yaml")
    for domain in registry.entries:
        assert (REPO / "adapters" / domain).is_dir(), domain


def test_guide_example_is_valid(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(HEADER + "\n" + GUIDE_EXAMPLE)
    registry = load_registry(path)
    entry = registry.entries["your-domain"]
    assert entry.lora_rank == 16 and entry.router_keywords[0] == "trigger"
    assert registry.lines["your-domain"] == HEADER.count("\n") + 2


def test_improvement_reads_in_points():
    assert improvement(0.72, 0.41) == "+31.0 pts (+75.6%)"  # the guide's example, in points
    assert improvement(0.30, 0.40) == "-10.0 pts (-25.0%)"
    assert improvement(0.5, 0.0) == "+50.0 pts"
    # the shipped math adapter: 37/60 over 1/60 is +60 points, not "+3592.8%"
    assert improvement(37 / 60, 1 / 60) == "+60.0 pts"
    assert improvement(0.55, 0.05) == "+50.0 pts"  # a base near zero: no relative figure
    assert improvement(0.5, 0.1) == "+40.0 pts (+400.0%)"


@pytest.mark.parametrize(("stated", "ok"), [
    ("+31.0 pts (+75.6%)", True), ("+31.0 pts", True), ("+75.6%", True),  # the guide's form
    ("+31.5 pts", False), ("+31.0 pts (+70.0%)", False), ("+12.0%", False), ("31 pts", False),
])
def test_registry_improvement_must_match_its_scores(tmp_path, stated, ok):
    path = tmp_path / "registry.yaml"
    path.write_text(GUIDE_EXAMPLE.replace('"+75.6%"', f'"{stated}"'))
    _, problems = validate_registry(path)
    assert ("your-domain" not in problems) is ok, problems


def test_relative_gain_over_a_near_zero_base_is_refused(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(GUIDE_EXAMPLE.replace("benchmark_score: 0.72", "benchmark_score: 0.6167")
                    .replace("base_model_score: 0.41", "base_model_score: 0.0167")
                    .replace('"+75.6%"', '"+3592.8%"'))
    _, problems = validate_registry(path)
    (problem,) = problems["your-domain"]
    assert "near zero" in problem.message and problem.fix == 'set improvement: "+60.0 pts"'



def test_every_problem_is_collected_with_its_line(tmp_path):
    path = tmp_path / "registry.yaml"
    bad = (GUIDE_EXAMPLE.replace('version: "1.0.0"', "version: 1.0")
           .replace("lora_rank: 16", 'lora_rank: "16"')
           .replace("benchmark_score: 0.72", "benchmark_score: 72")
           .replace('  router_keywords: ["trigger", "words", "for", "keyword", "router"]\n',
                    "  colour: blue\n")
           .replace("your-domain", "second"))
    path.write_text(GUIDE_EXAMPLE + bad)
    _, problems = validate_registry(path)
    assert "your-domain" not in problems
    text = "\n".join(str(p) for p in problems["second"])
    assert len(problems["second"]) == 5, text
    assert "lacks router_keywords" in text and "unknown key 'colour'" in text
    lines = path.read_text().splitlines()
    for problem in problems["second"]:
        assert problem.file == path and problem.fix
        if "lacks" not in problem.message:  # located on the offending key
            key = lines[problem.line - 1].split(":")[0].strip()
            assert key in problem.message or key == "colour", (problem, key)
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    assert len(info.value.problems) == 5
    assert f"{path}:{14 + 2}:" in info.value.render()  # second's version line


@pytest.mark.parametrize(("old", "new", "domain", "expected", "line"), [
    ("+75.6%", "+12.0%", "your-domain", "expected '+31.0 pts (+75.6%)'", 10),  # the scores
    ("your-domain:", "Your_Domain:", "Your_Domain", "slug", 1),  # as `adapters new` wants
])
def test_one_located_problem(tmp_path, old, new, domain, expected, line):
    path = tmp_path / "registry.yaml"
    path.write_text(GUIDE_EXAMPLE.replace(old, new))
    _, problems = validate_registry(path)
    (problem,) = problems[domain]
    assert expected in problem.message and problem.line == line


def test_invalid_yaml_and_duplicates_are_located(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(GUIDE_EXAMPLE + "  tags: [unclosed\n")
    _, problems = validate_registry(path)
    assert problems[None][0].line is not None and "invalid YAML" in problems[None][0].message
    path.write_text(GUIDE_EXAMPLE + "\n" + GUIDE_EXAMPLE)
    registry, problems = validate_registry(path)
    (dup,) = problems["your-domain"]
    assert "twice" in dup.message and dup.line == 16 and "line 1" in dup.message
    assert "your-domain" in registry.entries  # the first one still loads


def test_write_entry_keeps_comments_and_other_entries(tmp_path):
    path = tmp_path / "registry.yaml"
    before = (HEADER + "\n" + render_entry("alpha", full_entry()) +
              "\n# beta is maintained by team B\n" + render_entry("beta", full_entry()) +
              "  # end of beta\n\n# trailing note\n")
    path.write_text(before)
    write_entry(path, "alpha", full_entry(version="1.1.0", benchmark_score=0.8,
                                          improvement="+95.1%"))
    after = path.read_text()
    assert after.startswith(HEADER) and "# beta is maintained by team B\n" in after
    assert render_entry("beta", full_entry()) + "  # end of beta\n\n# trailing note\n" in after
    registry = load_registry(path)
    assert registry.entries["alpha"].version == "1.1.0"
    assert registry.entries["beta"] == full_entry()
    write_entry(path, "gamma", full_entry(description="third"))
    assert list(load_registry(path).entries) == ["alpha", "beta", "gamma"]
    assert path.read_text().startswith(after)  # appended, the rest untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry.yaml"]  # no temp files


def test_write_entry_into_a_broken_file_changes_nothing(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text("math: [oops\n")
    with pytest.raises(ConfigError):
        write_entry(path, "math", full_entry())
    assert path.read_text() == "math: [oops\n"


def test_gguf_quantization(real_base, tmp_path):
    assert gguf_quantization(real_base.gguf) == "Q4_K_M"
    (tmp_path / "x.gguf").write_bytes(b"nope")
    with pytest.raises(AdapterError):
        gguf_quantization(tmp_path / "x.gguf")


def test_register_reads_the_folder_and_keeps_written_fields(real_base, tmp_path):
    root = tmp_path / "adapters"
    folder = make_guide_layout(make_adapter(root / "math", real_base), score=(36, 50),
                               base_score=(20, 50))
    first = register("math", adapters_root=root)
    e = first.entry
    assert (e.benchmark_score, e.base_model_score, e.improvement) == (0.72, 0.4,
                                                                      "+32.0 pts (+80.0%)")
    assert (e.lora_rank, e.quantization, e.base_model) == (4, "Q4_K_M", "gemma-3-270m")
    assert e.size_mb == 2.0 and e.created == "2026-03-01"
    assert {p.message.split(":")[1].split()[0] for p in first.problems} == {"description",
                                                                           "authors"}
    register("math", adapters_root=root, authors=("Team Pi",), description="Sums",
             router_keywords=("add",), version="1.0.1")
    write_result(folder / "eval" / "results.json", "math", 40, 50)  # a new eval run
    again = register(folder, adapters_root=root)
    assert again.problems == []
    assert (again.entry.authors, again.entry.version, again.entry.router_keywords) == (
        ["Team Pi"], "1.0.1", ["add"])
    assert (again.entry.benchmark_score, again.entry.improvement) == (0.8,
                                                                      "+40.0 pts (+100.0%)")
    assert load_registry(root / "registry.yaml").entries["math"] == again.entry


def test_register_needs_eval_results(real_base, tmp_path):
    make_adapter(tmp_path / "adapters" / "math", real_base)
    with pytest.raises(AdapterError) as info:
        register("math", adapters_root=tmp_path / "adapters")
    assert "locollm eval --adapter math" in info.value.render()
    assert not (tmp_path / "adapters" / "registry.yaml").exists()


def test_validate_reports_layout_entry_and_staleness(real_base, tmp_path):
    root = tmp_path / "adapters"
    folder = make_guide_layout(make_adapter(root / "math", real_base))
    (root / "notes").mkdir()  # a folder with nothing in it
    register("math", adapters_root=root, authors=("Team Pi",), description="Sums",
             router_keywords=("add",))
    write_entry(root / "registry.yaml", "ghost", full_entry(router_keywords=["add", "x"]))
    report = validate(adapters_root=root)
    assert not report.ok and set(report.adapters) == {"math", "notes", "ghost"}
    assert [p.message for p in report.adapters["math"]] == [
        "math: router keyword 'add' is also claimed by ghost"]
    assert any("folder is missing" in p.message for p in report.adapters["ghost"])
    notes = "\n".join(str(p) for p in report.adapters["notes"])
    assert "notes/eval/ood_results.json: missing" in notes and "no entry" in notes
    write_entry(root / "registry.yaml", "ghost", full_entry(router_keywords=["x"]))
    assert validate(["math"], adapters_root=root).ok
    (folder / "eval" / "ood_results.json").unlink()
    write_result(folder / "eval" / "results.json", "math", 10, 50)
    problems = validate(["math"], adapters_root=root).adapters["math"]
    text = "\n".join(str(p) for p in problems)
    assert "ood_results.json: missing" in text and "stale: benchmark_score 0.72" in text


def test_cli_register_and_validate(real_base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = make_guide_layout(make_adapter(Path("adapters/math"), real_base))
    runner = CliRunner()
    result = runner.invoke(cli, ["adapters", "register", "math", "--author", "Team Pi",
                                 "--description", "Sums", "--keyword", "add",
                                 "--keyword", "how many"])
    assert result.exit_code == 0, result.output
    assert "72.0% vs base 40.0%: +32.0 pts (+80.0%)" in result.output
    assert "to do" not in result.output
    data = yaml.safe_load(Path("adapters/registry.yaml").read_text())
    assert data["math"]["router_keywords"] == ["add", "how many"]
    result = runner.invoke(cli, ["adapters", "validate"])
    assert result.exit_code == 0 and "[ ok ] math" in result.output, result.output
    (folder / "training" / "TRAINING_LOG.md").unlink()
    result = runner.invoke(cli, ["adapters", "validate", "math"])
    assert result.exit_code == 1 and "TRAINING_LOG.md: missing" in result.output
    Path("adapters/registry.yaml").write_text("math:\n  version: [\n")
    result = runner.invoke(cli, ["adapters", "validate"])
    assert result.exit_code == 1 and "registry.yaml:3: invalid YAML" in result.output


def test_cli_register_unknown_domain_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["adapters", "register", "nope"])
    assert result.exit_code == 2 and "not found" in result.output
