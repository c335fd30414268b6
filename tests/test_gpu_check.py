"""bench/gpu_check.sh and its helper, as far as a machine without a GPU can run them.

The script's own paths run for real: no GPU (exit 0), a GPU torch cannot use (exit 1, via a
stand-in ``nvidia-smi``, the one thing faked), bad options and an unusable wheel folder (exit
2). The helper's orchestration runs its three child processes for real with only the GPU
check faked: locollm's peft loop trains on the CPU, the Unsloth and bitsandbytes runs fail
for want of their packages, and the report says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

SCRIPT = REPO / "bench" / "gpu_check.sh"
sys.path.insert(0, str(REPO / "bench"))
import gpu_check  # noqa: E402


def _run(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path or "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    return subprocess.run(["bash", str(SCRIPT), "--python", sys.executable, *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def fake_gpu_path(tmp_path) -> str:
    """PATH with an ``nvidia-smi`` that lists one GPU (there is none here)."""
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text('#!/bin/sh\ncase "$1" in -L) echo "GPU 0: Tesla T4";; '
                   '*) echo "Tesla T4, 15360 MiB";; esac\n')
    smi.chmod(0o755)
    return f"{smi.parent}:/usr/bin:/bin"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_the_script_is_shellcheck_clean():
    done = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_without_a_gpu_it_says_so_and_exits_0():
    done = _run()
    assert done.returncode == 0, done.stderr
    assert "no GPU" in done.stdout


def test_a_gpu_that_torch_cannot_use_is_a_failure(fake_gpu_path):
    done = _run("--no-install", path=fake_gpu_path)
    assert done.returncode == 1
    assert "GPU: Tesla T4" in done.stdout and "sees no CUDA device" in done.stdout


@pytest.mark.parametrize("args, words", [
    (["--bogus"], "unknown option: --bogus"),
    (["--steps", "many"], "--steps must be a whole number"),
    (["--steps"], "--steps needs a value"),
])
def test_bad_options_are_usage_errors(args, words):
    done = _run(*args)
    assert done.returncode == 2 and words in done.stderr


def test_an_offline_install_needs_a_folder_of_wheels(fake_gpu_path, tmp_path):
    # unsloth is not installed here, so the script reaches its install step
    missing = _run("--wheels", str(tmp_path / "nowhere"), path=fake_gpu_path)
    assert missing.returncode == 2 and "is not a folder" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = _run("--wheels", str(tmp_path / "empty"), path=fake_gpu_path)
    assert empty.returncode == 2 and "--download-wheels" in empty.stderr


def test_help_names_every_option():
    done = _run("--help")
    assert done.returncode == 0
    for option in ("--wheels", "--download-wheels", "--python", "--steps", "--out",
                   "--base-model", "--no-install"):
        assert option in done.stdout


def test_helper_arguments_and_its_no_gpu_path(capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.parse_args(["--steps", "1"])
    assert exit_info.value.code == 2
    assert "at least 2" in capsys.readouterr().err
    assert gpu_check.main(["--steps", "4"]) == 0
    assert "no GPU" in capsys.readouterr().out
    assert gpu_check.main(["--require-gpu"]) == 1


@pytest.mark.slow
def test_the_report_runs_every_child_and_names_what_failed(tiny_model, tmp_path,
                                                           monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "cuda_status", lambda: (True, "a faked GPU"))
    code = gpu_check.main(["--base-model", str(tiny_model), "--steps", "2", "--batch-size",
                           "4", "--out", str(tmp_path), "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert code == 1  # unsloth and bitsandbytes are not installed here
    results = json.loads((tmp_path / "r.json").read_text())
    peft = results["locollm-peft"]
    assert peft["tokens_per_s"] > 0 and Path(peft["adapter"], "locollm.json").exists()
    assert "No module named" in results["unsloth"]["error"]
    assert "error" in results["hf-qlora"]
    assert "unsloth        failed:" in out and "GPU check on a faked GPU" in out
    assert "export" not in results  # nothing to export without the unsloth adapter
