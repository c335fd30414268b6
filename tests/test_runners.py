"""The Modelfile and llama-server script written next to an export: Ollama's parser reads back
the template and stops we wrote, the script names files that exist, and its chat template
prompts exactly as the one prompt function does."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from conftest import write_jsonl
from helpers_adapters import make_adapter
from helpers_hf import parse_modelfile
from jinja2.sandbox import ImmutableSandboxedEnvironment

from locollm.adapter.meta import load_meta
from locollm.export.runners import chat_template, prompt_pieces, write_runners
from locollm.prompt import ChatParts, chat_format, format_prompt

INSTRUCTION = "Solve the arithmetic word problem."


@pytest.fixture
def folder(real_base, tmp_path):
    folder = make_adapter(tmp_path / "math", real_base)
    write_jsonl(folder / "training" / "dataset.jsonl",
                [{"instruction": INSTRUCTION, "input": f"{a} + 1", "output": str(a + 1)}
                 for a in range(5)])
    return folder


def _exec_args(script: Path) -> list[str]:
    line = next(ln for ln in script.read_text().splitlines() if "exec " in ln)
    return shlex.split(line.split("exec ", 1)[1])


def test_modelfile_parses_into_our_template_and_stops(folder, real_base):
    modelfile, _ = write_runners(folder, real_base.gguf, lora=folder / "adapter.gguf")
    commands = parse_modelfile(modelfile.read_text())
    values = dict(commands)
    assert (folder / values["model"]).resolve() == real_base.gguf.resolve()
    assert (folder / values["adapter"]).resolve() == (folder / "adapter.gguf").resolve()
    fmt = load_meta(folder).fmt()
    assert values["template"] == format_prompt(INSTRUCTION, "{{ .Prompt }}", fmt)
    assert [v for k, v in commands if k == "stop"] == list(fmt.stop)  # "\n### " included


def test_llama_server_script_names_existing_files_and_prompts_alike(folder, real_base):
    _, script = write_runners(folder, real_base.gguf, lora=folder / "adapter.gguf")
    args = _exec_args(script)
    assert args[0] == "llama-server"
    for flag in ("-m", "--lora"):
        assert (folder / args[args.index(flag) + 1]).exists(), flag
    template = args[args.index("--chat-template") + 1]
    rendered = ImmutableSandboxedEnvironment().from_string(template).render(
        messages=[{"role": "user", "content": "12 + 35"}], eos_token="<eos>")
    assert rendered == format_prompt(INSTRUCTION, "12 + 35", load_meta(folder).fmt())
    assert json.dumps(list(load_meta(folder).fmt().stop)) in script.read_text()


def test_merged_runners_and_a_chat_format_with_braces(folder, tmp_path):
    meta = load_meta(folder)
    fmt = chat_format(ChatParts("<|user|>{{sys}}\n", "<|end|>\n<|assistant|>\n", "<|end|>\n"))
    meta.prompt_format, meta.stop = fmt.name, list(fmt.stop)
    meta.save(folder)
    (folder / "training" / "dataset.jsonl").unlink()  # no dominant instruction
    merged = folder / "math-merged-q4_k_m.gguf"
    merged.write_bytes(b"GGUF")
    modelfile, script = write_runners(folder, merged)
    assert modelfile.name == "Modelfile.merged" and script.name == "llama-server.merged.sh"
    values = dict(parse_modelfile(modelfile.read_text()))
    assert values["model"] == "./math-merged-q4_k_m.gguf" and "adapter" not in values
    # the literal {{sys}} is printed by Ollama's Go template, not run
    assert values["template"] == ('<|user|>{{"{{"}}sys{{"}}"}}\n{{ .Prompt }}<|end|>\n'
                                  '<|assistant|>\n')
    pieces = prompt_pieces(load_meta(folder), None)
    rendered = ImmutableSandboxedEnvironment().from_string(chat_template(pieces)).render(
        messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
                  {"role": "user", "content": "again"}])
    assert rendered == ("<|user|>{{sys}}\nhi<|end|>\n<|assistant|>\nyo<|end|>\n"
                        "<|user|>{{sys}}\nagain<|end|>\n<|assistant|>\n")
    assert "--lora" not in _exec_args(script)
