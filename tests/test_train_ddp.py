"""Data-parallel training: two real processes under ``torchrun`` (gloo, CPU) on the tiny model.

A run of two processes with ``grad_accum 1`` must write the same adapter folder, once, as one
process with ``grad_accum 2`` (the same global batch): same steps, same batches, the same
weights within float tolerance. Checkpoints written by such a run resume under ``torchrun``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, write_jsonl

from locollm.config import TrainConfig
from locollm.errors import ConfigError
from locollm.train import checkpoint, train

pytestmark = pytest.mark.slow

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node", "2"]
SETTINGS = dict(lora_rank=4, batch_size=4, lr=3e-3, max_steps=6, eval_every=3,
                eval_fraction=0.1, save_every=0, seed=7, threads=1)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _flags(settings: dict) -> list[str]:
    return [part for key, value in settings.items()
            for part in (f"--{key.replace('_', '-')}", str(value))]


def _torchrun(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(TORCHRUN + args, capture_output=True, text=True, env=_env(),
                          cwd=REPO, timeout=timeout)


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def _assert_same_run(ddp: Path, single: Path) -> None:
    """Same weights, losses and eval losses (up to float summation order)."""
    import torch

    a, b = _weights(ddp), _weights(single)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=2e-5, msg=key)
    moved = sum(float(t.abs().sum()) for k, t in a.items() if "lora_B" in k)
    assert moved > 0  # B starts at zero: training changed it
    ma, mb = (json.loads((f / "training" / "metrics.json").read_text()) for f in (ddp, single))
    assert [r["step"] for r in ma["train"]] == [r["step"] for r in mb["train"]]
    for ra, rb in zip(ma["train"], mb["train"], strict=True):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-4)
        assert ra["tokens"] == rb["tokens"]  # every token of the global batch, counted once
    assert [e["step"] for e in ma["eval"]] == [e["step"] for e in mb["eval"]]
    for ea, eb in zip(ma["eval"], mb["eval"], strict=True):
        assert ea["loss"] == pytest.approx(eb["loss"], rel=1e-4)


@pytest.fixture
def data(tmp_path, math_rows) -> Path:
    return write_jsonl(tmp_path / "data.jsonl", math_rows)


def test_torchrun_two_processes_match_one_process_with_the_same_global_batch(
        tiny_model, data, tmp_path):
    out = tmp_path / "ddp"
    done = _torchrun(["-m", "locollm", "train", "--base-model", str(tiny_model), "--dataset",
                      str(data), "--output", str(out), "--grad-accum", "1",
                      *_flags(SETTINGS)])
    assert done.returncode == 0, done.stderr[-3000:]
    logs = done.stdout + done.stderr
    assert logs.count("adapter written to") == 1  # rank 0 alone reports
    assert "x 2 processes (data-parallel)" in (out / "training" / "TRAINING_LOG.md").read_text()

    single = train(TrainConfig(base_model=str(tiny_model), dataset=str(data),
                               output=str(tmp_path / "single"), grad_accum=2, **SETTINGS))
    _assert_same_run(out, single.output)
    # the same folder, file for file, written once: one run in the log, nothing left over
    listing = {f: sorted(p.relative_to(f).as_posix() for p in f.rglob("*"))
               for f in (out, single.output)}
    assert listing[out] == listing[single.output]
    assert "locollm.json" in listing[out] and "training/loss.png" in listing[out]
    assert (out / "training" / "TRAINING_LOG.md").read_text().count("## Training run") == 1
    assert checkpoint.find(out) is None
    meta = json.loads((out / "locollm.json").read_text())
    assert (meta["lora_rank"], meta["backend"]) == (4, "peft")


DRIVER = textwrap.dedent("""
    import json, sys
    from locollm.config import TrainConfig
    from locollm.train import train

    cfg, stop, resume = TrainConfig(**json.loads(sys.argv[1])), int(sys.argv[2]), sys.argv[3]
    def on_step(record):  # rank 0 only: like Ctrl-C there
        if record["step"] == stop:
            raise KeyboardInterrupt
    train(cfg, on_step=on_step, resume=resume == "resume")
""")


def test_an_interrupted_torchrun_run_resumes_to_the_same_weights(tiny_model, data, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    out = tmp_path / "ddp"
    cfg = dict(base_model=str(tiny_model), dataset=str(data), output=str(out), grad_accum=1,
               **(SETTINGS | {"save_every": 2}))
    stopped = _torchrun([str(driver), json.dumps(cfg), "3", "-"])
    assert stopped.returncode != 0
    state = checkpoint.read_state(out)
    assert state["step"] == 2 and state["fingerprint"]["world_size"] == 2
    assert not (out / "locollm.json").exists()

    with pytest.raises(ConfigError, match="world_size: 2 in the checkpoint, 1 now"):
        train(TrainConfig(**cfg), resume=True)  # one process cannot continue it

    resumed = _torchrun([str(driver), json.dumps(cfg), "0", "resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    metrics = json.loads((out / "training" / "metrics.json").read_text())
    assert metrics["resumed_at"] == [2]
    single = train(TrainConfig(**(cfg | {"output": str(tmp_path / "single"), "grad_accum": 2,
                                         "save_every": 0})))
    _assert_same_run(out, single.output)


def test_a_bad_dataset_stops_every_rank_with_the_message(tiny_model, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "Add.", "input": "1 + 1"}\n')
    done = _torchrun(["-m", "locollm", "train", "--base-model", str(tiny_model), "--dataset",
                      str(bad), "--output", str(tmp_path / "out"), *_flags(SETTINGS)],
                     timeout=300)
    assert done.returncode != 0
    assert "bad.jsonl:1" in done.stderr
    assert not (tmp_path / "out" / "locollm.json").exists()


@pytest.mark.skipif(shutil.which("accelerate") is None and
                    not (Path(sys.executable).parent / "accelerate").exists(),
                    reason="accelerate's launcher is not installed")
def test_accelerate_launch_is_the_same_data_parallel_run(tiny_model, data, tmp_path):
    import socket

    launcher = shutil.which("accelerate") or str(Path(sys.executable).parent / "accelerate")
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "acc"
    # --multi_gpu is accelerate's torchrun-style launcher; on a machine without CUDA its
    # processes meet over gloo (--cpu would start a single process)
    done = subprocess.run([launcher, "launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--main_process_port", str(port),
                           "--mixed_precision", "no",
                           "--dynamo_backend", "no", "-m", "locollm", "train",
                           "--base-model", str(tiny_model), "--dataset", str(data),
                           "--output", str(out), "--grad-accum", "1",
                           *_flags(SETTINGS | {"max_steps": 2})],
                          capture_output=True, text=True, env=_env(), cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    single = train(TrainConfig(base_model=str(tiny_model), dataset=str(data),
                               output=str(tmp_path / "single"), grad_accum=2,
                               **(SETTINGS | {"max_steps": 2})))
    _assert_same_run(out, single.output)


UNSLOTH_DRIVER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[2])
    import fake_unsloth  # the stand-in: there is no GPU here
    sys.modules.update(fake_unsloth.build({}))
    from locollm.config import TrainConfig
    from locollm.train import train

    steps = []
    result = train(TrainConfig(**json.loads(sys.argv[1])), on_step=steps.append)
    print("RESULT", json.dumps({"main": result.main, "steps": [r["step"] for r in steps]}))
""")


def test_the_unsloth_path_under_torchrun_reports_and_writes_once(tiny_model, data, tmp_path):
    """The Trainer runs DDP itself; locollm's callbacks and writes must stay on rank 0."""
    driver = tmp_path / "driver.py"
    driver.write_text(UNSLOTH_DRIVER)
    out = tmp_path / "unsloth"
    cfg = dict(base_model=str(tiny_model), dataset=str(data), output=str(out),
               backend="unsloth", precision="fp32", max_seq_len=128,
               **(SETTINGS | {"max_steps": 4, "save_every": 2}))
    done = _torchrun([str(driver), json.dumps(cfg), str(REPO / "tests")])
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines()
               if line.startswith("RESULT ")]
    assert sorted(r["main"] for r in results) == [False, True]
    by_rank = {r["main"]: r["steps"] for r in results}
    assert by_rank[True] == [1, 2, 3, 4] and by_rank[False] == []  # rank 0 reports alone
    metrics = json.loads((out / "training" / "metrics.json").read_text())
    assert [r["step"] for r in metrics["train"]] == [1, 2, 3, 4]
    assert (out / "training" / "TRAINING_LOG.md").read_text().count("## Training run") == 1
    assert json.loads((out / "locollm.json").read_text())["backend"] == "unsloth"
    assert checkpoint.find(out) is None
