"""Build and install llama-cpp-python so that it runs on the CPU it was built on.

``pip install llama-cpp-python`` compiles llama.cpp with ``GGML_NATIVE=ON`` (``-march=native``).
On a CPU that advertises AMX (Intel Sapphire Rapids and newer, common on cloud VMs) that turns on
ggml's AMX matmul, and on virtual machines whose hypervisor does not enable the AMX tile state
the first decode dies in ``ggml_backend_amx_mul_mat`` (``ldtilecfg``: SIGSEGV). So on x86-64 this
script turns ``GGML_NATIVE`` off and names every ISA extension itself, from the CPU's own flags:
AVX, AVX2, FMA, F16C, BMI2 and the AVX-512 family stay on where the CPU has them (the fast
paths, same speed as native: ``bench/llama_build_speed.py``), and AMX is always off.
``GGML_BACKEND_DL`` with ``GGML_CPU_ALL_VARIANTS`` was rejected: its run-time scoring picks the
variant with the most features, which on such a CPU is the AMX one, the same crash.

The built wheel is kept in ``~/.cache/locollm/wheels/<version>-<hash of the flags>/``: pip's own
wheel cache ignores ``CMAKE_ARGS`` and would hand back a wheel built with other flags. A
llama-cpp-python that is already installed (a CUDA or Metal build, Colab's) is kept when its
one-token decode passes in a subprocess; one that crashes is rebuilt.

It also fetches llama.cpp's own Python converters (``convert_hf_to_gguf.py``,
``convert_lora_to_gguf.py``, their ``conversion/`` package and ``gguf-py``) from the sdist of
the llama-cpp-python that is installed, so a Hugging Face model converts with exactly the
llama.cpp that will run it; :mod:`locollm.export.converter` explains why these and not a
package from PyPI. They go to ``~/.cache/locollm/llama-convert/<version>/`` and work offline
from then on (a GPU machine without internet included).

Standard library only: it runs before locollm is installed.

    python locollm/llama_build.py --print-args     # the CMake flags for this machine
    python locollm/llama_build.py --python .venv/bin/python [--force]
    python locollm/llama_build.py --converter-only  # fetch the converters alone (online, once)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

# The version the suite passed with; a new upstream release changes nothing without a commit.
LLAMA_CPP_PYTHON = "0.3.36"

# ggml CMake option -> the CPU flags (as /proc/cpuinfo names them) it compiles code for; an
# option is on only when the CPU has every one (GGML_AVX512 emits -mavx512{f,cd,vl,dq,bw}).
_AVX512 = ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw")
X86_FEATURES = {
    "GGML_SSE42": ("sse4_2",),
    "GGML_AVX": ("avx",),
    "GGML_AVX2": ("avx2",),
    "GGML_FMA": ("fma",),
    "GGML_F16C": ("f16c",),
    "GGML_BMI2": ("bmi2",),
    "GGML_AVX_VNNI": ("avx_vnni",),
    "GGML_AVX512": _AVX512,
    "GGML_AVX512_VBMI": (*_AVX512, "avx512vbmi"),
    "GGML_AVX512_VNNI": (*_AVX512, "avx512_vnni"),
    "GGML_AVX512_BF16": (*_AVX512, "avx512_bf16"),
}
# Never compiled in: advertised is not the same as usable (see the module docstring).
ALWAYS_OFF = ["GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"]
# Build only what locollm loads: the multimodal library (mtmd) is imported lazily by
# llama-cpp-python and never by locollm; skipping it saves a quarter of the compile.
COMMON = ["-DLLAVA_BUILD=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
          "-DLLAMA_BUILD_TOOLS=OFF", "-DLLAMA_BUILD_SERVER=OFF"]


def cpu_flags() -> set[str]:
    """The CPU's feature flags, lower case (Linux /proc/cpuinfo; macOS sysctl)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    if sys.platform == "darwin":
        out = subprocess.run(["sysctl", "-n", "machdep.cpu.features",
                              "machdep.cpu.leaf7_features"], capture_output=True, text=True)
        return {f.lower().replace(".", "_") for f in out.stdout.split()}
    return set()


def cmake_args(flags: set[str] | None = None, machine: str | None = None) -> list[str]:
    """CMake flags that build a llama.cpp safe for this CPU.

    x86-64: GGML_NATIVE off, every extension named from ``flags``, AMX off. Other machines
    (Apple silicon with Metal, aarch64) keep llama.cpp's own defaults: the AMX fault is x86's.
    """
    machine = (machine or platform.machine()).lower()
    flags = cpu_flags() if flags is None else flags
    if machine not in ("x86_64", "amd64", "i686", "i386"):
        return list(COMMON)
    args = ["-DGGML_NATIVE=OFF"]
    args += [f"-D{opt}={'ON' if flags.issuperset(need) else 'OFF'}"
             for opt, need in X86_FEATURES.items()]
    args += [f"-D{opt}=OFF" for opt in ALWAYS_OFF]
    return args + COMMON


def build_key(args: list[str], version: str = LLAMA_CPP_PYTHON) -> str:
    """Cache key of a wheel: the version and the exact flags it was built with."""
    return f"{version}-{hashlib.sha256(' '.join(args).encode()).hexdigest()[:12]}"


def wheel_cache() -> Path:
    base = os.environ.get("LOCOLLM_WHEEL_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "locollm" / "wheels"
    return Path(base)


@dataclass
class Installed:
    """What ``python`` has installed now."""

    # the llama-cpp-python version, or None when it does not import
    version: str | None
    # built with a GPU backend (CUDA, Metal, Vulkan...): a build the user chose, kept as it is
    gpu: bool = False
    # one real decode passed in a child process (locollm.doctor); None when it was not run
    decodes: bool | None = None
    detail: str = ""


def installed(python: str) -> Installed:
    """The llama-cpp-python ``python`` has, and whether it decodes (each in a child process)."""
    code = ("import llama_cpp; print(llama_cpp.__version__, "
            "bool(llama_cpp.llama_supports_gpu_offload()))")
    probe = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if probe.returncode != 0:
        return Installed(None, detail=probe.stderr.strip()[-300:])
    version, gpu = probe.stdout.split()
    check = subprocess.run([python, "-m", "locollm.doctor", "--probe-only"],
                           capture_output=True, text=True)
    if check.returncode != 0 and "No module named" in check.stderr:
        return Installed(version, gpu == "True")  # locollm not installed yet: not checked
    return Installed(version, gpu == "True", check.returncode == 0,
                     (check.stdout + check.stderr).strip()[-2000:])


def keep_reason(have: Installed, version: str) -> str | None:
    """Why the installed build is kept, or None when it must be (re)built.

    Kept: a build that decodes and is either the pinned version or a GPU build (a user's own
    CUDA/Metal build of another version is theirs to choose). Rebuilt: nothing installed, a
    build that crashes or fails its decode check, a CPU build of another version.
    """
    if have.version is None or have.decodes is False:
        return None
    if have.gpu:
        return f"{have.version}, a GPU build"
    if have.version == version:
        return have.version
    return None


def sdist(python: str, version: str) -> Path:
    """The llama-cpp-python ``version`` sdist, downloaded once into the wheel cache.

    One file serves both the build and llama.cpp's Python converters, so the converter is
    always the one vendored with the runtime that was compiled.
    """
    folder = wheel_cache() / "sdist"
    found = sorted(folder.glob(f"llama_cpp_python-{version}.tar.gz"))
    if found:
        return found[-1]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                        ":all:", "-d", tmp, f"llama-cpp-python=={version}"], check=True)
        got = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        os.replace(got, folder / got.name)
    return folder / got.name


def build_wheel(python: str, args: list[str], version: str) -> Path:
    """Compile llama-cpp-python once per (version, flags) into the wheel cache."""
    folder = wheel_cache() / build_key(args, version)
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if wheels:
        print(f"llama_build: cached wheel {wheels[-1]}")
        return wheels[-1]
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CMAKE_ARGS=" ".join(args), FORCE_CMAKE="1")
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    print(f"llama_build: compiling llama-cpp-python {version} (5-20 minutes, once per machine)")
    print(f"llama_build: CMAKE_ARGS={env['CMAKE_ARGS']}")
    subprocess.run([python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-cache-dir", "-w",
                    str(tmp), str(sdist(python, version))], env=env, check=True)
    os.replace(tmp, folder) if not folder.exists() else None
    return sorted(folder.glob("llama_cpp_python-*.whl"))[-1]


# What the converters need from the sdist's vendor/llama.cpp/ (folders end with "/").
CONVERTER_FILES = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/",
                   "gguf-py/gguf/", "LICENSE")
CONVERTER_MARK = "convert_hf_to_gguf.py"


def converter_cache() -> Path:
    """Root of the fetched converters (``LOCOLLM_CONVERTER_CACHE`` overrides)."""
    base = os.environ.get("LOCOLLM_CONVERTER_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "locollm" / "llama-convert"
    return Path(base)


def converter_dir(version: str = LLAMA_CPP_PYTHON) -> Path:
    """Where the converters of llama-cpp-python ``version`` live once fetched."""
    return converter_cache() / version


def installed_version(python: str) -> str | None:
    """The llama-cpp-python version installed for ``python`` (None when there is none)."""
    probe = subprocess.run([python, "-c", "import importlib.metadata as m; "
                            "print(m.version('llama_cpp_python'))"], capture_output=True, text=True)
    if probe.returncode != 0:
        return None
    return probe.stdout.strip() or None


def _extract_converter(sdist: Path, dest: Path) -> None:
    """Copy the converter files out of the sdist (regular files only, no path escapes)."""
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 4 or parts[1:3] != ["vendor", "llama.cpp"]:
                continue
            rel = "/".join(parts[3:])
            if ".." in parts or not any(rel == f or (f.endswith("/") and rel.startswith(f))
                                        for f in CONVERTER_FILES):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def fetch_converter(python: str = sys.executable, version: str = LLAMA_CPP_PYTHON,
                    source: Path | None = None) -> Path:
    """Fetch llama.cpp's Python converters of llama-cpp-python ``version`` into the cache.

    The sdist is the one the build used (:func:`sdist`: fetched once from the package index),
    or ``source`` when given. Nothing is compiled. Returns the converter folder.
    """
    dest = converter_dir(version)
    if (dest / CONVERTER_MARK).exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source is None:
        print(f"llama_build: llama.cpp's converters from the llama-cpp-python {version} sdist")
        source = sdist(python, version)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
        staged = Path(tmp) / "converter"
        _extract_converter(source, staged)
        if not (staged / CONVERTER_MARK).exists():
            raise RuntimeError(f"{source} has no vendor/llama.cpp/{CONVERTER_MARK}")
        if not dest.exists():  # another process may have fetched it meanwhile
            os.replace(staged, dest)
    return dest


def rebuild_command(args: list[str] | None = None, python: str = "python") -> str:
    """The one command that rebuilds llama-cpp-python safely (printed by ``locollm doctor``)."""
    args = cmake_args() if args is None else args
    return (f"CMAKE_ARGS={shlex.quote(' '.join(args))} FORCE_CMAKE=1 {python} -m pip install "
            f"--force-reinstall --no-deps --no-cache-dir --no-binary llama-cpp-python "
            f"llama-cpp-python=={LLAMA_CPP_PYTHON}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter to install into")
    parser.add_argument("--force", action="store_true", help="rebuild even if one works")
    parser.add_argument("--print-args", action="store_true", help="print the CMake flags")
    parser.add_argument("--converter-only", action="store_true",
                        help="only fetch llama.cpp's converters for the installed version")
    parser.add_argument("--version", default=LLAMA_CPP_PYTHON)
    opts = parser.parse_args(argv)
    if opts.converter_only:
        version = installed_version(opts.python) or opts.version
        print(f"llama_build: converters in {fetch_converter(opts.python, version)}")
        return 0
    extra = shlex.split(os.environ.get("LLAMA_CMAKE_ARGS", ""))  # the user's own, last wins
    args = cmake_args() + extra
    if opts.print_args:
        print(" ".join(args))
        return 0
    if not opts.force:
        have = installed(opts.python)
        reason = keep_reason(have, opts.version)
        if reason:
            print(f"llama_build: keeping the installed llama-cpp-python {reason}")
            fetch_converter(opts.python, have.version or opts.version)
            return 0
        if have.decodes is False:
            print(f"llama_build: the installed llama-cpp-python {have.version} fails its decode "
                  f"check; rebuilding.\n{have.detail}")
        elif have.version:
            print(f"llama_build: replacing llama-cpp-python {have.version} (CPU build) with "
                  f"{opts.version}")
    wheel = build_wheel(opts.python, args, opts.version)
    subprocess.run([opts.python, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps",
                    str(wheel)], check=True)
    # its pure-Python dependencies (diskcache, jinja2, typing-extensions, numpy)
    subprocess.run([opts.python, "-m", "pip", "install", "-q", str(wheel)], check=True)
    print(f"llama_build: installed {wheel.name}")
    fetch_converter(opts.python, opts.version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
