"""What runs an export elsewhere: an Ollama ``Modelfile`` and the ``llama-server`` command line.

Both are written next to the export and carry what locollm's own runtime reads from the
adapter's metadata: the base and the LoRA GGUF (or the merged file), the prompt format the
adapter was trained with, and where an answer stops. The prompt text comes from the one prompt
function (:func:`locollm.prompt.format_prompt`) with a placeholder for the user's message, so
Ollama and llama-server prompt exactly as training did:

* ``Modelfile`` (``Modelfile.merged`` for the merged file): ``FROM`` + ``ADAPTER`` (or the
  merged file), ``TEMPLATE`` (a Go template around ``{{ .Prompt }}``) and ``PARAMETER stop``;
  ``ollama create NAME -f Modelfile``.
* ``llama-server.sh`` (``llama-server.merged.sh``): ``llama-server -m BASE --lora LORA
  --chat-template ...`` with the prompt format as a Jinja chat template. llama-server takes
  stop strings per request (``"stop": [...]``), so the script's comment lists them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..adapter.meta import AdapterMeta, default_instruction, load_meta
from ..paths import atomic_write
from ..prompt import format_prompt

_SENTINEL = "LocollmUserMessage7f3a"


@dataclass(frozen=True)
class PromptPieces:
    """An adapter's prompt around the user's message, and what ends an answer."""

    before: str  # text before the user's message (the instruction, when one dominates)
    after: str  # text after it, up to where the answer starts
    end: str  # what the model writes after an answer ("" : the EOS token)
    stops: tuple[str, ...]  # strings that cut an answer


def prompt_pieces(meta: AdapterMeta, instruction: str | None) -> PromptPieces:
    """The adapter's prompt split around the user's message (the one prompt function's
    output with a placeholder in it)."""
    fmt = meta.fmt()
    if instruction:
        text = format_prompt(instruction, _SENTINEL, fmt)
    else:
        text = format_prompt(_SENTINEL, "", fmt)
    before, _, after = text.partition(_SENTINEL)
    parts = fmt.chat
    stops = list(fmt.stop)
    if parts is not None and parts.end.strip() and parts.end.strip() not in stops:
        stops.append(parts.end.strip())
    return PromptPieces(before, after, parts.end if parts else "", tuple(stops))


def _go_literal(text: str) -> str:
    """Text as a literal in a Go template (an action delimiter in it is printed, not run)."""
    return re.sub(r"\{\{|\}\}", lambda m: '{{"' + m.group(0) + '"}}', text)


def _ollama_quote(value: str) -> str:
    """A Modelfile argument: quoted, triple-quoted when it holds a double quote."""
    return f'"""{value}"""' if '"' in value else f'"{value}"'


def modelfile_text(source: str, pieces: PromptPieces, adapter: str | None = None) -> str:
    """An Ollama Modelfile: ``FROM source`` (+ ``ADAPTER``), the template and the stops."""
    template = _go_literal(pieces.before) + "{{ .Prompt }}" + _go_literal(pieces.after)
    lines = [f"FROM {source}"]
    if adapter:
        lines.append(f"ADAPTER {adapter}")
    lines.append(f'TEMPLATE """{template}"""')
    lines += [f"PARAMETER stop {_ollama_quote(stop)}" for stop in pieces.stops]
    return "\n".join(lines) + "\n"


def _jinja_literal(text: str) -> str:
    return "{{ " + json.dumps(text, ensure_ascii=False) + " }}" if text else ""


def chat_template(pieces: PromptPieces) -> str:
    """A Jinja chat template that prompts as the adapter was trained: each user message in
    the adapter's prompt, each assistant message closed by its end of turn (or EOS)."""
    end = _jinja_literal(pieces.end) if pieces.end else "{{ eos_token }}"
    return ('{%- for message in messages -%}'
            '{%- if message.role == "user" -%}'
            f"{_jinja_literal(pieces.before)}{{{{ message.content }}}}"
            f"{_jinja_literal(pieces.after)}"
            '{%- elif message.role == "assistant" -%}'
            f"{{{{ message.content }}}}{end}"
            "{%- endif -%}{%- endfor -%}")


def _rel(path: Path, folder: Path) -> str:
    """``path`` as the runner in ``folder`` names it: relative inside the folder."""
    path, folder = Path(path).resolve(), folder.resolve()
    try:
        return "./" + str(path.relative_to(folder))
    except ValueError:
        return str(path)


def server_script(folder: Path, model: Path, pieces: PromptPieces,
                  lora: Path | None = None) -> str:
    """A shell script running llama.cpp's server on ``model`` (+ ``lora``) from ``folder``."""
    args = ["llama-server", "-m", _rel(model, folder)]
    if lora is not None:
        args += ["--lora", _rel(lora, folder)]
    args += ["--chat-template", chat_template(pieces), "--port", "8080"]
    stops = json.dumps(list(pieces.stops), ensure_ascii=False)
    return ("#!/bin/sh\n"
            "# llama.cpp's own server with this export, prompting as the adapter was trained.\n"
            f"# Send the stop strings with each request: \"stop\": {stops}\n"
            f'cd "$(dirname "$0")" && exec {shlex.join(args)} "$@"\n')


def write_runners(adapter_dir: str | Path, model: str | Path, *,
                  lora: str | Path | None = None) -> tuple[Path, Path]:
    """Write the Modelfile and llama-server script for an export into the adapter folder.

    Args:
        adapter_dir: the adapter folder (its metadata gives the prompt format).
        model: the GGUF to run: the base (with ``lora``) or the merged file.
        lora: the LoRA GGUF, for the hot-swap export.

    Returns:
        (Modelfile path, script path): ``Modelfile`` and ``llama-server.sh`` for a LoRA,
        ``Modelfile.merged`` and ``llama-server.merged.sh`` for a merged file.
    """
    folder = Path(adapter_dir)
    meta = load_meta(folder)
    pieces = prompt_pieces(meta, default_instruction(folder))
    suffix = "" if lora is not None else ".merged"
    modelfile = atomic_write(folder / f"Modelfile{suffix}", modelfile_text(
        _rel(Path(model), folder), pieces, _rel(Path(lora), folder) if lora else None))
    script = atomic_write(folder / f"llama-server{suffix}.sh", server_script(
        folder, Path(model), pieces, Path(lora) if lora else None))
    os.chmod(script, 0o755)
    return modelfile, script
