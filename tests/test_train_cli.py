"""`locollm train` through the CLI: progress, the result summary, Ctrl-C, --resume, kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, write_jsonl

from locollm.cli import cli
from locollm.train import checkpoint
from locollm.train.monitor import Progress


@pytest.fixture
def args(tiny_model, tmp_path, math_rows):
    data = write_jsonl(tmp_path / "data.jsonl", math_rows)
    return ["train", "--profile", "cpu", "--base-model", str(tiny_model), "--dataset", str(data),
            "--output", str(tmp_path / "adapter"), "--lora-rank", "4", "--batch-size", "4",
            "--max-steps", "6", "--eval-every", "3", "--save-every", "2", "--lr", "3e-3",
            "--threads", "1"]


def test_train_prints_progress_and_a_diagnosed_summary(args, tmp_path):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "profile cpu: asked for" in out
    assert "step     6/6  loss" in out and "tok/s" in out and "eval " in out
    assert "adapter written to" in out and "peft on cpu" in out
    assert "diagnosis: " in out and "TRAINING_LOG.md" in out
    assert (tmp_path / "adapter" / "training" / "loss.png").exists()
    assert "Profile: cpu (asked for)" in (
        tmp_path / "adapter" / "training" / "TRAINING_LOG.md").read_text()


def test_ctrl_c_keeps_the_checkpoint_and_resume_finishes(args, tmp_path, monkeypatch):
    real_call = Progress.__call__

    def ctrl_c_at_step_5(self, record):
        real_call(self, record)
        if record["step"] == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(Progress, "__call__", ctrl_c_at_step_5)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 130
    assert "the checkpoint at step 4 is kept: rerun with --resume" in result.output
    monkeypatch.setattr(Progress, "__call__", real_call)
    again = CliRunner().invoke(cli, [*args, "--resume"])
    assert again.exit_code == 0, again.output
    assert "resuming from the checkpoint at step 4" in again.output
    assert "step     5/6" in again.output and "step     1/6" not in again.output
    log = (tmp_path / "adapter" / "training" / "TRAINING_LOG.md").read_text()
    assert "Resumed at step(s): 4" in log


def test_a_leftover_checkpoint_is_mentioned_without_resume(args, tmp_path):
    folder = checkpoint.checkpoint_dir(tmp_path / "adapter")
    folder.mkdir(parents=True)
    (folder / checkpoint.STATE).write_text('{"backend": "peft", "step": 2}')
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "holds a checkpoint of an interrupted run (step 2); starting over" in result.output


def test_fine_tune_script_is_the_same_command():
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "fine_tune.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--profile", "--resume", "--lora-rank", "--eval-every", "--save-every"):
        assert flag in out


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path} never appeared:\n{proc.stderr.read()}")
        time.sleep(0.05)


def test_kill_9_mid_run_leaves_no_finished_looking_adapter(args, tmp_path):
    """A real ``kill -9`` of `locollm train` right after a checkpoint: the folder does not look
    trained, and --resume finishes it."""
    argv = list(args)
    argv[argv.index("--max-steps") + 1] = "200"  # long enough to be killed mid-run
    argv[argv.index("--save-every") + 1] = "10"
    proc = subprocess.Popen([sys.executable, "-c", "from locollm.cli import cli; cli()", *argv],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            cwd=tmp_path)
    out = tmp_path / "adapter"
    _wait_for(checkpoint.checkpoint_dir(out) / checkpoint.STATE, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stderr.close()
    assert not (out / "locollm.json").exists()
    step = checkpoint.read_state(out)["step"]
    assert step % 10 == 0 and step < 200
    result = CliRunner().invoke(cli, [*argv, "--resume"])
    assert result.exit_code == 0, result.output
    assert f"resuming from the checkpoint at step {step}" in result.output
    assert (out / "locollm.json").exists() and checkpoint.find(out) is None
