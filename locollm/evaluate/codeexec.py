"""The code scorer: run a reply's program against the item's tests in a sandboxed child process.

pass@1 with greedy decoding: the one answer passes when the program (the reply's first fenced
block, else the whole reply), then the item's ``tests``, then ``check(entry_point)`` when the
tests define ``check``, run to the end. The child process gets:

* a wall-clock **timeout** (the whole process group is killed);
* a **memory** limit (``RLIMIT_AS``) and a limit on the size of files it writes
  (``RLIMIT_FSIZE``), set before the program runs, and no core dumps;
* **no network**: a new network namespace (``unshare --net``) where the system allows one, and
  in every case an audit hook installed before the program runs that refuses socket
  connections, binds, DNS look-ups and starting other programs (Python's audit events are
  raised by the C socket module too, so importing ``_socket`` does not get round it);
* a fresh **temporary directory** as its working directory, ``HOME`` and ``TMPDIR``, deleted
  afterwards, and an environment without the parent's variables (no keys leak into it).

This is a guard for honest mistakes of a small model (an infinite loop, a huge list, a test
that fetches a URL), not a security boundary for hostile code: run untrusted benchmarks in a
container.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .benchmark import BenchItem
from .extract import code_block
from .scorers import Score

# Runs in the child before the program: refuse network and process-spawning audit events.
_GUARD = r"""
import sys
_BLOCKED = ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
            "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
            "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
            "os.fork", "os.forkpty", "pty.spawn")
def _hook(event, args):
    if event in _BLOCKED:
        raise PermissionError(f"locollm sandbox: {event} is not allowed")
sys.addaudithook(_hook)
del _hook
"""

# Limits are set by the child on itself before the program runs (soft = hard, so the
# program cannot raise them again); preexec_fn would do it between fork and exec, but that is
# unsafe in a parent with threads (the scorers run in a thread pool).
_LIMITS = """
import resource
for _k, _v in (("RLIMIT_AS", {memory}), ("RLIMIT_FSIZE", {files}), ("RLIMIT_CORE", 0)):
    resource.setrlimit(getattr(resource, _k), (_v, _v))
"""
_RUNNER = "import runpy, sys; sys.argv = ['program.py']; runpy.run_path('program.py', " \
          "run_name='__main__')"


@dataclass
class SandboxConfig:
    """Limits of one program run."""

    # wall-clock seconds before the process group is killed
    timeout_s: float = 10.0
    # address-space limit in MiB (RLIMIT_AS): allocations beyond it raise MemoryError
    memory_mb: int = 1024
    # largest file the program may write, in MiB (RLIMIT_FSIZE)
    file_mb: int = 16
    # a new network namespace: True (required), False (never), None (when the system allows)
    namespace: bool | None = None
    # the in-process audit hook refusing sockets and subprocesses (tests switch it off to
    # prove the namespace alone holds)
    socket_guard: bool = True


@dataclass
class RunResult:
    """How one program run ended."""

    passed: bool
    reason: str  # "passed", "failed", "timeout", "memory", "file size", "network"
    returncode: int | None
    output: str  # the end of stdout and stderr


@functools.lru_cache(maxsize=1)
def namespace_prefix() -> tuple[str, ...] | None:
    """The ``unshare`` command that gives a child its own empty network, if this system has
    one that works (it needs user namespaces or root)."""
    tool = shutil.which("unshare")
    if tool is None or not sys.platform.startswith("linux"):
        return None
    for prefix in ((tool, "--net"), (tool, "--net", "--map-root-user")):
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return prefix
    return None


def _tail(path: Path, limit: int = 2000) -> str:
    data = path.read_bytes() if path.exists() else b""
    return data[-limit:].decode("utf-8", "replace")


def _reason(code: int | None, output: str) -> str:
    if code == 0:
        return "passed"
    if "MemoryError" in output or "Cannot allocate memory" in output:
        return "memory"
    if "File too large" in output:
        return "file size"
    if "locollm sandbox: socket" in output or "Network is unreachable" in output or \
            "Name or service not known" in output or "Temporary failure in name" in output:
        return "network"
    return "failed"


def run_python(program: str, config: SandboxConfig | None = None) -> RunResult:
    """Run ``program`` in a sandboxed Python child process (see the module docstring)."""
    config = config or SandboxConfig()
    prefix: tuple[str, ...] = ()
    if config.namespace is not False:
        found = namespace_prefix()
        if found is None and config.namespace:
            raise RuntimeError("no network namespace on this system (unshare --net failed)")
        prefix = found or ()
    with tempfile.TemporaryDirectory(prefix="locollm-code-") as root:
        folder = Path(root) / "work"  # the program's folder; its output is kept beside it
        folder.mkdir()
        tmp = str(folder)
        (folder / "program.py").write_text(program, encoding="utf-8")
        limits = _LIMITS.format(memory=config.memory_mb << 20, files=config.file_mb << 20)
        boot = limits + (_GUARD if config.socket_guard else "") + _RUNNER
        env = {"PATH": os.defpath, "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
               # numerical libraries reserve address space per thread; one thread fits
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        out = Path(root) / "output"
        with open(out, "wb") as sink:
            proc = subprocess.Popen(
                [*prefix, sys.executable, "-I", "-c", boot], cwd=tmp, env=env,
                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                start_new_session=True)
            try:
                code = proc.wait(timeout=config.timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return RunResult(False, "timeout", None, _tail(out))
        output = _tail(out)
        return RunResult(code == 0, _reason(code, output), code, output)


def build_program(reply: str, item: BenchItem) -> str:
    """The reply's code, then the item's tests, then ``check(entry_point)`` if tests define it."""
    parts = [code_block(reply), item.tests or ""]
    if item.entry_point and "def check(" in (item.tests or ""):
        parts.append(f"check({item.entry_point})")
    return "\n\n".join(parts) + "\n"


def code_score(reply: str, item: BenchItem, config: SandboxConfig | None = None) -> Score:
    """pass@1: the reply's program passes the item's tests inside the sandbox."""
    result = run_python(build_program(reply, item), config)
    last = result.output.strip().splitlines()[-1:] if not result.passed else []
    detail = "" if result.passed else f"{result.reason}: {' '.join(last)}"[:300]
    return Score("code", result.passed, float(result.passed), code_block(reply)[:200],
                 "tests pass", detail)
