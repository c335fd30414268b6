"""Would ``pip install -e ".[gpu]"`` keep Colab's own CUDA torch? Resolve it and see.

Colab ships torch built for its CUDA (``2.11.0+cu128`` as of this pin). A package that pins
another exact torch (xformers did, release after release) makes pip replace it with a PyPI
build. This script asks pip to resolve locollm's dependencies and an extra (default ``gpu``)
for Colab's Python and platform, with a stand-in wheel for the installed torch (a local
version PyPI cannot offer, so pip can only keep it), and reports what pip would install.
Nothing is installed; only package metadata is downloaded.

    python colab/check_gpu_pins.py                          # Colab's torch and Python now
    python colab/check_gpu_pins.py --torch 2.12.0+cu128 --triton 3.7.0 --python 3.13

Exit status 0: torch is kept and the set resolves; 1: it is not (pip's message is printed).
llama-cpp-python is left out: it has no wheel on PyPI, and the notebook installs it from
llama.cpp's CUDA wheel index or compiles it.

Standard library only, so it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIP = ("llama-cpp-python",)  # no wheel on PyPI: installed by the notebook itself
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
             "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64",
             "linux_x86_64"]
SHOW = ("torch", "xformers", "unsloth", "unsloth_zoo", "bitsandbytes", "transformers", "trl",
        "peft", "accelerate", "datasets", "triton", "torchao", "torchvision")


def _toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(path.read_text(encoding="utf-8"))


def requirements(pyproject: Path, extra: str) -> list[str]:
    """The project's dependencies plus ``extra``'s, without the ones pip cannot resolve here."""
    project = _toml(pyproject)["project"]
    extras = project.get("optional-dependencies", {})
    if extra not in extras:
        raise SystemExit(f"{pyproject}: no extra {extra!r} (have: {', '.join(extras)})")
    reqs = list(project["dependencies"]) + list(extras[extra])
    return [r for r in reqs if not r.replace("_", "-").lower().startswith(SKIP)]


def standin_torch(folder: Path, version: str, triton: str | None) -> Path:
    """A metadata-only wheel named torch at ``version``: what the machine has installed."""
    dist = f"torch-{version}.dist-info"
    requires = [f"Requires-Dist: triton=={triton}"] if triton else []
    metadata = "\n".join(["Metadata-Version: 2.1", "Name: torch", f"Version: {version}",
                          *requires, ""])
    wheel = folder / f"torch-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("torch/__init__.py", "")
        zf.writestr(f"{dist}/METADATA", metadata)
        zf.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: locollm\n"
                                     "Root-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}/RECORD", "")
    return wheel


def pip_command(reqs: list[str], torch: str, python: str, links: Path, report: Path,
                constraints: Path) -> list[str]:
    """``pip install --dry-run`` for another interpreter and platform, torch held."""
    constraints.write_text(f"torch=={torch}\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
           "--quiet", "--report", str(report), "--only-binary=:all:", "--python-version",
           python, "--target", str(links / "target"), "--find-links", str(links),
           "-c", str(constraints)]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    return cmd + reqs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--torch", default="2.11.0+cu128", help="the installed torch")
    parser.add_argument("--triton", default="3.6.0", help="the triton that torch pins")
    parser.add_argument("--python", default="3.13", help="the machine's Python (X.Y)")
    parser.add_argument("--extra", default="gpu", help="the extra to resolve")
    parser.add_argument("--pyproject", type=Path, default=REPO / "pyproject.toml")
    args = parser.parse_args(argv)
    reqs = requirements(args.pyproject, args.extra)
    with tempfile.TemporaryDirectory() as tmp:
        links = Path(tmp)
        standin_torch(links, args.torch, args.triton)
        report = links / "report.json"
        cmd = pip_command(reqs, args.torch, args.python, links, report, links / "keep.txt")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            print(f"pip cannot install [{args.extra}] beside torch {args.torch} on Python "
                  f"{args.python}:\n{done.stderr[-4000:]}")
            return 1
        chosen = {i["metadata"]["name"].lower().replace("-", "_"): i["metadata"]["version"]
                  for i in json.loads(report.read_text())["install"]}
    for name in SHOW:
        if name in chosen:
            print(f"{name:<14} {chosen[name]}")
    if chosen.get("torch") != args.torch:
        print(f"pip would replace torch {args.torch} with {chosen.get('torch')}")
        return 1
    print(f"ok: [{args.extra}] resolves on Python {args.python} and keeps torch {args.torch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
