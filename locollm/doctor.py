"""Self-check: does llama.cpp decode on this machine, and what a bug report needs to know.

A native fault in llama.cpp (an AMX matmul on a VM that advertises AMX but does not enable it,
an AVX-512 build on a CPU without it) kills the whole Python process with no message. So the
check runs one tiny real decode of the embedded model in a **child process** with core dumps
off and :mod:`faulthandler` on. The parent reads how the child ended: a clean exit is a pass; a
signal becomes a message naming the signal, the Python frame (and, where gdb is installed, the
native frame) it died in, the CPU features seen, the flags llama.cpp was built with, and the one
command that rebuilds it safely (:func:`locollm.llama_build.rebuild_command`).

``locollm doctor`` prints the whole report; ``make setup``, ``make demo`` and the pytest run
start with :func:`run_probe`. ``LOCOLLM_DOCTOR_FAULT=segv|abort|ill`` injects a real fault in
the child after llama.cpp has loaded the model, to show the failure path.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__, llama_build

PROBE_PROMPT = "The capital of France is"
PROBE_TOKENS = 4
FAULT_ENV = "LOCOLLM_DOCTOR_FAULT"
_INFO_TAG, _RESULT_TAG = "LOCOLLM-PROBE-INFO ", "LOCOLLM-PROBE-RESULT "
# CPU features that decide which llama.cpp code paths are safe; the rest of the flags are noise
_FEATURE_RE = re.compile(
    r"^(avx\w*|amx\w*|fma|f16c|bmi2|sse4_2|neon|asimd\w*|sve\w*|sme(_\w+|\d\w*)?)$")


@dataclass
class ProbeResult:
    """How the child's decode ended."""

    ok: bool
    model: str
    seconds: float
    returncode: int | None = None
    # SIGSEGV, SIGILL, ... when the child was killed by a signal
    signal: str | None = None
    timed_out: bool = False
    text: str | None = None
    tokens_per_second: float | None = None
    # llama_print_system_info() as the child saw it (printed before the decode)
    system_info: str | None = None
    # the child's last lines of stderr (faulthandler's traceback on a crash)
    stderr_tail: str = ""
    # where the fault happened natively, from gdb when it is installed
    native_frames: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def cpu_features() -> list[str]:
    """The CPU flags that matter to llama.cpp's code paths, sorted."""
    return sorted(f for f in llama_build.cpu_flags() if _FEATURE_RE.match(f))


def cpu_model() -> str:
    """The CPU's marketing name, or the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _no_core_dump() -> None:  # runs in the child between fork and exec
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _probe_command(model: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "locollm.doctor", "--probe-only"]
    return cmd + (["--model", model] if model else [])


def run_probe(model: str | Path | None = None, timeout: float = 300,
              env: dict[str, str] | None = None, backtrace: bool = True) -> ProbeResult:
    """Decode a few tokens of ``model`` (default: the embedded one) in a child process.

    Never raises for a crash of the child: the result says what happened. ``backtrace``: on a
    crash, rerun the child under gdb (when installed) for the native frame.
    """
    model_arg = str(model) if model else None
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    start = time.perf_counter()
    preexec = _no_core_dump if os.name == "posix" else None
    try:
        proc = subprocess.run(_probe_command(model_arg), capture_output=True, text=True,
                              env=child_env, timeout=timeout, preexec_fn=preexec)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        result = ProbeResult(False, model_arg or "gemma-3-270m", time.perf_counter() - start,
                             timed_out=True)
        _read_child_output(result, out, "")
        return result
    result = ProbeResult(proc.returncode == 0, model_arg or "gemma-3-270m",
                         time.perf_counter() - start, returncode=proc.returncode)
    if proc.returncode < 0:
        result.signal = signal.Signals(-proc.returncode).name
    _read_child_output(result, proc.stdout, proc.stderr)
    if result.ok and result.text is None:  # exited 0 without decoding: not a pass
        result.ok = False
    if result.signal and backtrace:
        result.native_frames = native_backtrace(model_arg, child_env, timeout)
    return result


def _read_child_output(result: ProbeResult, stdout: str, stderr: str) -> None:
    for line in stdout.splitlines():
        if line.startswith(_INFO_TAG):
            info = json.loads(line[len(_INFO_TAG):])
            result.system_info = info.get("system_info")
            result.model = info.get("model", result.model)
        elif line.startswith(_RESULT_TAG):
            done = json.loads(line[len(_RESULT_TAG):])
            result.text = done["text"]
            result.tokens_per_second = done.get("tokens_per_second")
    result.stderr_tail = "\n".join(stderr.strip().splitlines()[-25:])


def native_backtrace(model: str | None, env: dict[str, str], timeout: float) -> list[str]:
    """The innermost native frames of a crashing probe, from gdb (empty without gdb)."""
    gdb = shutil.which("gdb")
    if not gdb:
        return []
    cmd = [gdb, "-batch", "-nx", "-ex", "set confirm off", "-ex", "run", "-ex", "bt 8",
           "-ex", "kill", "--args", *_probe_command(model)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                              preexec_fn=_no_core_dump if os.name == "posix" else None)
    except (subprocess.TimeoutExpired, OSError):
        return []
    lines = proc.stdout.splitlines()
    frames = [ln.strip() for ln in lines if re.match(r"^#\d+\s", ln)]
    stop = [ln.strip() for ln in lines if "received signal" in ln]
    return stop[:1] + frames[:8]


def system_flags(system_info: str | None) -> dict[str, str]:
    """``AVX2 = 1 | AMX_INT8 = 0 | ...`` from llama_print_system_info as a dict."""
    return dict(re.findall(r"([A-Z][A-Z0-9_]+) = (\w+)", system_info or ""))


def diagnose(result: ProbeResult, features: list[str] | None = None) -> str:
    """Why the probe failed and what fixes it, in a few lines (empty when it passed).

    ``features``: the CPU flags to reason with (default: this machine's).
    """
    if result.ok:
        return ""
    features = cpu_features() if features is None else features
    built = system_flags(result.system_info)
    lines = []
    if result.timed_out:
        lines.append(f"llama.cpp did not finish a {PROBE_TOKENS}-token decode of "
                     f"{result.model} in {result.seconds:.0f}s (hung or far too slow).")
    elif result.signal:
        lines.append(f"llama.cpp crashed with {result.signal} while decoding {PROBE_TOKENS} "
                     f"tokens of {result.model} (in a child process: nothing else was lost).")
    else:
        lines.append(f"the llama.cpp check exited with status {result.returncode}.")
    where = [ln for ln in result.stderr_tail.splitlines() if ln.strip().startswith("File ")]
    if where:
        lines.append(f"  Python frame: {where[0].strip()}")
    for frame in result.native_frames[:4]:
        lines.append(f"  native: {frame}")
    if result.signal is None and result.stderr_tail and not where:
        lines += [f"  {ln}" for ln in result.stderr_tail.splitlines()[-5:]]
    amx_cpu = [f for f in features if f.startswith("amx")]
    amx_built = sorted(k for k, v in built.items() if k.startswith("AMX") and v == "1")
    lines.append(f"  CPU features seen: {' '.join(features) or 'none reported'}")
    if result.system_info:
        lines.append(f"  llama.cpp build: {result.system_info.strip()}")
    if amx_cpu and (amx_built or not built):
        lines.append("  cause: this CPU advertises AMX and llama.cpp was built with its AMX "
                     "path (GGML_NATIVE=ON); on many VMs AMX faults (ldtilecfg).")
    elif result.signal == "SIGILL":
        lines.append("  cause: llama.cpp was built for instructions this CPU does not run "
                     "(a build made on another machine, or for -march=native elsewhere).")
    lines.append("  fix: rebuild llama-cpp-python for this CPU (GGML_NATIVE off, AMX off):")
    lines.append(f"    {llama_build.rebuild_command(python=sys.executable)}")
    lines.append("  or, in a checkout: make setup LLAMA_REBUILD=1")
    return "\n".join(lines)


@dataclass
class Report:
    """Everything ``locollm doctor`` prints, as (section, [(key, value)])."""

    sections: list[tuple[str, list[tuple[str, str]]]]
    probe: ProbeResult | None

    @property
    def ok(self) -> bool:
        return self.probe is None or self.probe.ok

    def to_dict(self) -> dict:
        return {"ok": self.ok, "sections": {name: dict(rows) for name, rows in self.sections},
                "probe": self.probe.to_dict() if self.probe else None}


def _torch_rows() -> list[tuple[str, str]]:
    try:
        import torch
    except ImportError:
        return [("torch", "not installed")]
    rows = [("torch", torch.__version__)]
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        rows.append(("CUDA", f"{torch.version.cuda}: {', '.join(names)}"))
    else:
        rows.append(("CUDA", "not available"))
    mps = getattr(torch.backends, "mps", None)
    rows.append(("MPS", "available" if mps and mps.is_available() else "not available"))
    rows.append(("torch threads", str(torch.get_num_threads())))
    return rows


def _llama_rows(probe: ProbeResult | None) -> list[tuple[str, str]]:
    try:
        from importlib.metadata import version

        rows = [("llama-cpp-python", version("llama-cpp-python"))]
    except Exception:  # PackageNotFoundError, or a broken install's metadata
        return [("llama-cpp-python", "not installed (make setup builds it)")]
    if probe and probe.system_info:
        rows.append(("build flags", probe.system_info.strip()))
        built = system_flags(probe.system_info)
        amx = [k for k, v in built.items() if k.startswith("AMX") and v == "1"]
        rows.append(("AMX path", "compiled in: " + ", ".join(amx) if amx else "not compiled in"))
    rows.append(("safe rebuild", llama_build.rebuild_command(python=sys.executable)))
    return rows


def _cache_rows() -> list[tuple[str, str]]:
    from .paths import home, models_dir

    rows = [("LOCOLLM_HOME", str(home()))]
    folder = models_dir()
    for entry in sorted(folder.iterdir()) if folder.exists() else []:
        size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file()) \
            if entry.is_dir() else entry.stat().st_size
        rows.append((entry.name, f"{size / 1e6:,.0f} MB"))
    return rows


def _thread_rows() -> list[tuple[str, str]]:
    from .runtime.engine import default_threads

    return [("cpu cores", str(os.cpu_count())),
            ("llama.cpp threads", f"{default_threads()} (LOCOLLM_THREADS="
                                  f"{os.environ.get('LOCOLLM_THREADS', 'unset')})"),
            ("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "unset"))]


def build_report(model: str | Path | None = None, probe: bool = True) -> Report:
    """Machine, torch, llama.cpp, threads, cache and (with ``probe``) the decode check."""
    result = run_probe(model) if probe else None
    machine = [("locollm", __version__), ("python", f"{platform.python_version()} "
                                                    f"({sys.executable})"),
               ("platform", platform.platform()), ("cpu", cpu_model()),
               ("cpu features", " ".join(cpu_features()) or "none reported")]
    sections = [("machine", machine), ("torch", _torch_rows()),
                ("llama.cpp", _llama_rows(result)), ("threads", _thread_rows()),
                ("model cache", _cache_rows())]
    return Report(sections, result)


# ------------------------------------------------------------------------------------ child
def _inject_fault(kind: str) -> None:
    """A real native fault, for showing (and testing) the failure path."""
    import ctypes

    if kind == "segv":
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    elif kind == "abort":
        os.abort()
    elif kind == "ill":
        signal.raise_signal(signal.SIGILL)


def _child(model: str | None) -> int:
    """Load the model, report llama.cpp's build, decode a few tokens; print both as JSON."""
    import faulthandler

    faulthandler.enable()  # a fatal signal prints the Python stack to stderr
    import llama_cpp

    from .models import resolve
    from .runtime.engine import Engine, EngineConfig

    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    path = resolve(model).gguf
    if path is None:
        print(f"{model} has no GGUF to decode with", file=sys.stderr)
        return 2
    print(_INFO_TAG + json.dumps({"system_info": info, "model": str(path)}), flush=True)
    with Engine(path, EngineConfig(n_ctx=128)) as engine:
        if os.environ.get(FAULT_ENV):
            _inject_fault(os.environ[FAULT_ENV])
        done = engine.complete(PROBE_PROMPT, max_tokens=PROBE_TOKENS)
    rate = done.completion_tokens / done.latency_s if done.latency_s else None
    print(_RESULT_TAG + json.dumps({"text": done.text, "tokens_per_second": rate}), flush=True)
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="the child side of `locollm doctor`")
    parser.add_argument("--probe-only", action="store_true")
    parser.add_argument("--model")
    args = parser.parse_args()
    sys.exit(_child(args.model))
