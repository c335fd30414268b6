"""The CLI shell: help texts, errors as messages with exit codes, lazy heavy imports."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from locollm.cli import cli

VERBS = ["data", "train", "export", "query", "eval", "models"]


def _leaf_commands(group, prefix=()):
    import click

    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaf_commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


def test_help_lists_every_verb_with_examples():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for verb in VERBS:
        assert f"  {verb}" in result.output
    leaves = list(_leaf_commands(cli))
    assert len(leaves) >= 15
    for path in leaves:
        sub = CliRunner().invoke(cli, [*path, "--help"])
        assert sub.exit_code == 0 and "Example" in sub.output, path


def test_loco_and_locollm_are_the_same_group():
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts")
               if e.name in ("loco", "locollm")}
    assert scripts == {"loco": "locollm.cli:cli", "locollm": "locollm.cli:cli"}


def test_help_imports_neither_torch_nor_llama_cpp():
    code = ("import sys; from click.testing import CliRunner; from locollm.cli import cli; "
            "CliRunner().invoke(cli, ['--help']); "
            "print(sorted(m for m in ('torch', 'llama_cpp', 'transformers', 'unsloth') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bad_dataset_is_a_located_message_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "x", "output": "y"}\n{"instruction": 3, "output": "y"}\n')
    result = CliRunner().invoke(cli, ["train", "--dataset", str(bad), "--output",
                                      str(tmp_path / "out")])
    assert result.exit_code == 2
    assert f"{bad}:2:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_out_of_range_rank_fails_before_loading(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--dataset", "x.jsonl", "--output", "o",
                                      "--lora-rank", "0"])
    assert result.exit_code == 2 and "lora_rank" in result.output


def test_missing_adapter_names_a_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["export", "nosuch"])
    assert result.exit_code == 2
    assert "not found" in result.output and "fix:" in result.output


def test_query_flags_exclude_each_other():
    result = CliRunner().invoke(cli, ["query", "hi", "--adapter", "a", "--no-adapter"])
    assert result.exit_code == 2 and "exclude" in result.output


def test_eval_single_model_needs_output(tmp_path):
    result = CliRunner().invoke(cli, ["eval", "--no-adapter", "--benchmark", "b.jsonl"])
    assert result.exit_code == 2 and "--output" in result.output
