"""`locollm adapters new`: the guide's folder, default config, no overwrite, slug names."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from locollm.adapter.scaffold import check_slug, new_adapter
from locollm.cli import cli
from locollm.config import TrainConfig, merge_config, read_yaml
from locollm.data.check import check_dataset
from locollm.errors import LocollmError


def test_new_adapter_writes_the_guide_layout(tmp_path):
    folder = new_adapter("legal-qa", tmp_path / "adapters")
    assert folder == tmp_path / "adapters" / "legal-qa"
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == ["eval/README.md", "training/TRAINING_LOG.md", "training/train_config.yaml"]
    log = (folder / "training" / "TRAINING_LOG.md").read_text()
    for row in ("| Wrong answer format | | Include many examples with correct formatting |",
                "| Missing reasoning steps | | Use chain-of-thought examples with explicit steps |",
                "| Inconsistent quality | | More diverse training examples, especially edge "
                "cases |"):
        assert row in log
    assert "--no-adapter --save-log adapters/legal-qa/training/baseline_tests.jsonl" in log
    assert "- [ ] Benchmark set (50+ examples) is completely separate from training set" in log
    assert [p.name for p in folder.parent.iterdir()] == ["legal-qa"]  # no temp folder left


def test_train_config_is_the_default_config_with_comments(tmp_path):
    folder = new_adapter("recipes", tmp_path)
    path = folder / "training" / "train_config.yaml"
    cfg = merge_config(TrainConfig, read_yaml(path))
    assert cfg == TrainConfig(dataset=str(tmp_path / "recipes/training/dataset.jsonl"),
                              output=str(tmp_path / "recipes"))
    text = path.read_text()
    assert "# LoRA rank: capacity of the adapter." in text
    assert text.index("# LoRA rank") < text.index("lora_rank: 16")


def test_existing_folder_is_never_overwritten(tmp_path):
    folder = new_adapter("math", tmp_path)
    log = folder / "training" / "TRAINING_LOG.md"
    log.write_text("my notes")
    result = CliRunner().invoke(cli, ["adapters", "new", "math", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "already exists" in result.output
    assert log.read_text() == "my notes"


@pytest.mark.parametrize("name", ["Math", "my_domain", "legal qa", "-x", "x-", "a--b", "9lives",
                                  "../escape", "", "x" * 41])
def test_names_must_be_lowercase_slugs(tmp_path, name):
    with pytest.raises(LocollmError, match="not a lowercase slug"):
        check_slug(name)
    result = CliRunner().invoke(cli, ["adapters", "new", "--root", str(tmp_path), "--", name])
    assert result.exit_code == 2 and "fix:" in result.output
    assert list(tmp_path.iterdir()) == []


def test_slug_fix_suggests_a_valid_name():
    with pytest.raises(LocollmError) as err:
        check_slug("Legal QA_v2")
    assert "'legal-qa-v2'" in err.value.render()
    for good in ("math", "legal-qa", "sql2", "a1-b2-c3"):
        assert check_slug(good) == good


def test_cli_new_prints_the_next_step(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["adapters", "new", "legal-qa"])
    assert result.exit_code == 0, result.output
    assert "created adapters/legal-qa/" in result.output and "--save-log" in result.output
    assert (tmp_path / "adapters/legal-qa/training/train_config.yaml").exists()


def test_template_log_does_not_count_as_documenting_sources(tmp_path):
    folder = new_adapter("trivia", tmp_path)
    rows = "".join(f'{{"instruction": "Question {i} about trivia topic {i * 7}?", '
                   f'"output": "Answer {i}."}}\n' for i in range(20))
    dataset = folder / "training" / "dataset.jsonl"
    dataset.write_text(rows)
    report = check_dataset(dataset)
    sources = next(i for i in report.items if i.name == "sources documented")
    assert sources.status == "fail" and sources.data["missing"] == ["dataset.jsonl"]
