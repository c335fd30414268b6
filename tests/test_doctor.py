"""The self-check: a real decode in a child process, a crash reported instead of suffered."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from locollm import llama_build
from locollm.doctor import ProbeResult, diagnose, run_probe, system_flags

REPO = Path(__file__).resolve().parents[1]
LOCO = [str(Path(sys.executable).parent / "locollm")]


def _allow_core_dumps() -> None:
    """The parent allows cores, so a missing core file proves the child turned them off."""
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(LOCO + args, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600, preexec_fn=_allow_core_dumps)


def test_doctor_reports_a_clean_machine(tmp_path):
    proc = _run(["doctor", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and report["probe"]["ok"] and report["probe"]["text"]
    sections = report["sections"]
    assert sections["torch"]["torch"]
    assert "AVX" in sections["llama.cpp"]["build flags"] or sys.platform == "darwin"
    assert sections["llama.cpp"]["AMX path"] == "not compiled in"
    assert "llama.cpp threads" in sections["threads"]
    assert "gemma-3-270m" in sections["model cache"]


@pytest.mark.parametrize("fault, signame", [("segv", "SIGSEGV"), ("abort", "SIGABRT")])
def test_a_native_crash_is_reported_with_its_fix_and_no_core_dump(tmp_path, fault, signame):
    proc = _run(["doctor"], tmp_path, LOCOLLM_DOCTOR_FAULT=fault)
    assert proc.returncode == 1  # the doctor itself survived and said so
    assert f"crashed with {signame}" in proc.stderr
    assert "Python frame: File" in proc.stderr and "_inject_fault" in proc.stderr \
        or "string_at" in proc.stderr
    assert "-DGGML_NATIVE=OFF" in proc.stderr and "-DGGML_AMX_INT8=OFF" in proc.stderr
    assert "CPU features seen:" in proc.stderr
    assert not list(tmp_path.glob("core*")), "the crashing child left a core dump"


def test_quick_check_passes_and_prints_one_line(tmp_path):
    proc = _run(["doctor", "--quick"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1 and "llama.cpp decodes on this machine" in proc.stdout


def test_pytest_stops_with_the_message_instead_of_dying(tmp_path):
    """A run that selects llama.cpp tests starts with the probe; a crash there ends pytest
    cleanly with status 3 and the doctor's message, before any test loads llama.cpp."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(REPO / "tests" / "test_engine.py")], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "LOCOLLM_DOCTOR_FAULT": "segv"}, timeout=600)
    assert proc.returncode == 3, proc.stdout[-2000:]
    assert "fails its decode check" in proc.stdout and "crashed with SIGSEGV" in proc.stdout
    assert " passed" not in proc.stdout and " failed" not in proc.stdout


def test_a_hung_decode_is_a_failure_not_a_hang():
    result = run_probe(timeout=0.05, backtrace=False)
    assert not result.ok and result.timed_out
    assert "did not finish" in diagnose(result, features=["avx2"])


def test_diagnosis_names_amx_when_the_cpu_and_the_build_have_it():
    info = "CPU : AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 |"
    crashed = ProbeResult(False, "m.gguf", 1.0, returncode=-11, signal="SIGSEGV",
                          system_info=info,
                          native_frames=["#0  ggml_backend_amx_mul_mat () at amx.cpp:1"])
    text = diagnose(crashed, features=["amx_int8", "amx_tile", "avx512f"])
    assert "advertises AMX" in text and "ggml_backend_amx_mul_mat" in text
    assert "-DGGML_AMX_TILE=OFF" in text
    # the same crash without AMX on the CPU is not blamed on AMX
    assert "advertises AMX" not in diagnose(crashed, features=["avx2"])
    illegal = ProbeResult(False, "m.gguf", 1.0, returncode=-4, signal="SIGILL")
    assert "instructions this CPU does not run" in diagnose(illegal, features=["avx2"])
    assert system_flags(info) == {"AVX2": "1", "AVX512": "1", "AMX_INT8": "1", "OPENMP": "1"}
    assert diagnose(ProbeResult(True, "m", 1.0, text="x")) == ""


def test_build_flags_never_enable_amx_and_keep_the_fast_paths():
    amx_cpu = {"sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512cd",
               "avx512vl", "avx512dq", "avx512bw", "avx512_vnni", "amx_tile", "amx_int8",
               "amx_bf16"}
    args = llama_build.cmake_args(amx_cpu, "x86_64")
    assert "-DGGML_NATIVE=OFF" in args
    for on in ("AVX", "AVX2", "FMA", "F16C", "BMI2", "AVX512", "AVX512_VNNI"):
        assert f"-DGGML_{on}=ON" in args
    for off in ("AMX_TILE", "AMX_INT8", "AMX_BF16", "AVX512_BF16", "AVX512_VBMI"):
        assert f"-DGGML_{off}=OFF" in args
    # AVX-512 needs all five base extensions (ggml compiles -mavx512{f,cd,vl,dq,bw})
    partial = llama_build.cmake_args({"avx2", "avx512f"}, "x86_64")
    assert "-DGGML_AVX512=OFF" in partial and "-DGGML_AVX2=ON" in partial
    # Apple silicon / aarch64 keep llama.cpp's own defaults (Metal, -mcpu=native)
    assert not any("NATIVE" in a for a in llama_build.cmake_args(set(), "arm64"))
    # a wheel built with other flags is never reused
    assert llama_build.build_key(args) != llama_build.build_key(partial)
    assert llama_build.build_key(args) == llama_build.build_key(list(args))


def test_the_rebuild_command_pins_the_version_and_skips_pips_cache():
    cmd = llama_build.rebuild_command(["-DGGML_NATIVE=OFF"], python="py")
    assert f"llama-cpp-python=={llama_build.LLAMA_CPP_PYTHON}" in cmd
    assert "--no-cache-dir" in cmd and "--force-reinstall" in cmd
    assert cmd.startswith("CMAKE_ARGS=-DGGML_NATIVE=OFF ")


def test_make_setup_builds_the_pinned_version():
    makefile = (REPO / "Makefile").read_text()
    assert f"LLAMA_SPEC := llama-cpp-python=={llama_build.LLAMA_CPP_PYTHON}\n" in makefile


def test_an_installed_build_that_decodes_is_kept():
    have = llama_build.installed(sys.executable)
    assert have.version == llama_build.LLAMA_CPP_PYTHON and have.decodes
    assert llama_build.keep_reason(have, llama_build.LLAMA_CPP_PYTHON) == have.version


def test_which_installed_builds_are_kept():
    keep = llama_build.keep_reason
    Have = llama_build.Installed
    pinned = llama_build.LLAMA_CPP_PYTHON
    assert keep(Have(None), pinned) is None  # nothing installed
    assert keep(Have(pinned, decodes=False), pinned) is None  # crashes: rebuilt
    assert keep(Have("0.3.16", decodes=True), pinned) is None  # a stale CPU build: replaced
    assert keep(Have("0.3.16", gpu=True, decodes=True), pinned)  # a user's CUDA build: kept
    assert keep(Have("0.3.16", gpu=True, decodes=False), pinned) is None  # ... unless it crashes
    assert keep(Have(pinned, decodes=None), pinned) == pinned  # not checkable yet: setup checks


def test_a_build_that_crashes_is_not_kept(monkeypatch):
    monkeypatch.setenv("LOCOLLM_DOCTOR_FAULT", "segv")  # the child's decode dies with SIGSEGV
    have = llama_build.installed(sys.executable)
    assert have.version and have.decodes is False
    assert llama_build.keep_reason(have, llama_build.LLAMA_CPP_PYTHON) is None
