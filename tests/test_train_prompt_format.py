"""Training, eval, query and the server build the same prompt for the same example.

An adapter is really trained on the tiny model, once with the plain ``alpaca`` template (the
tiny tokenizer, like Gemma 3 270M, has no chat template) and once with a Gemma-style chat
template set on its tokenizer. The prompts eval, query and the server send to the engine are
recorded: llama.cpp itself is not involved in formatting, so a recording engine stands in for
it. The training side is checked on the token ids it actually trained on.
"""

from __future__ import annotations

import shutil

import pytest
from conftest import write_jsonl

from locollm.adapter.meta import load_meta
from locollm.config import TrainConfig
from locollm.prompt import PromptFormat, format_for_tokenizer, format_prompt, parse_response
from locollm.runtime.api import ChatRequest
from locollm.runtime.engine import Completion
from locollm.train.api import prepare, train

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "<start_of_turn>{{ role }}\n{{ message['content'] | trim }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")

INSTRUCTION = "Add the numbers."
ROWS = [{"instruction": INSTRUCTION, "input": f"{a} + {a + 4}",
         "output": f"{a} + {a + 4} = {2 * a + 4}"} for a in range(10, 22)]


class RecordingEngine:
    """Stands in for the llama.cpp engine: records every prompt, answers with a fixed text."""

    chat_template, bos_text, eos_text, n_vocab = None, "", "", 1000  # what the server reads

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.scheduler = type("Scheduler", (), {"max_queue": None})()

    def complete(self, prompt, *, adapter=None, stop=(), **kwargs) -> Completion:
        self.prompts.append(prompt)
        return Completion("42", 3, 1, 0.0, "stop", adapter)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module", params=["alpaca", "chat"])
def trained(request, tiny_model, tmp_path_factory):
    """(base folder, adapter folder, tokenizer) for one prompt format."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp(request.param)
    base = tiny_model
    if request.param == "chat":
        base = folder / "chat-base"
        shutil.copytree(tiny_model, base)
        tokenizer = AutoTokenizer.from_pretrained(base)
        tokenizer.chat_template = GEMMA_TEMPLATE
        tokenizer.save_pretrained(base)
    data = write_jsonl(folder / "data.jsonl", ROWS)
    cfg = TrainConfig(base_model=str(base), dataset=str(data), output=str(folder / "adapter"),
                      lora_rank=4, max_steps=2, batch_size=4, eval_fraction=0, threads=1)
    result = train(cfg)
    return cfg, result.output, AutoTokenizer.from_pretrained(base), request.param


def test_metadata_names_the_format_training_used(trained):
    cfg, out, tokenizer, kind = trained
    meta = load_meta(out)
    fmt = PromptFormat(meta.prompt_format, tuple(meta.stop))
    assert fmt == prepare(cfg).fmt == format_for_tokenizer(tokenizer)
    assert fmt.label == kind


def test_training_tokens_are_the_eval_prompt_tokens(trained):
    cfg, out, tokenizer, _ = trained
    meta = load_meta(out)
    fmt = PromptFormat(meta.prompt_format, tuple(meta.stop))
    prep = prepare(cfg)
    for example, item in zip(prep.train_examples, prep.train_items, strict=True):
        prompt = format_prompt(example.instruction, example.input, fmt)
        assert item.input_ids[:item.answer_start] == tokenizer(prompt).input_ids


def test_eval_query_and_server_send_the_same_prompt(trained, tmp_path, monkeypatch):
    from locollm.evaluate import runner as evaluate
    from locollm.runtime import query as query_mod
    from locollm.runtime import session
    from locollm.runtime.router import Router
    from locollm.runtime.server import Service
    from locollm.runtime.session import Runtime

    cfg, out, _, _ = trained
    meta = load_meta(out)
    engine = RecordingEngine()
    monkeypatch.setattr(session, "open_engine", lambda *a, **k: (engine, {meta.name: meta}))
    monkeypatch.setattr(query_mod, "open_engine", lambda *a, **k: (engine, {meta.name: meta}))
    row = ROWS[3]
    bench = write_jsonl(tmp_path / "bench.jsonl", [row])
    evaluate.compare(out, bench, out_dir=tmp_path / "eval")
    query_mod.query(row["input"], adapter=str(out), instruction=INSTRUCTION)
    runtime = Runtime(engine=engine, base_name="base", metas={meta.name: meta},
                      folders={meta.name: out}, router=Router({}),
                      instructions={meta.name: INSTRUCTION})
    job = Service(runtime).prepare(ChatRequest.model_validate({"model": meta.name, "messages": [
        {"role": "user", "content": row["input"]}]}), chat=True)
    expected = format_prompt(INSTRUCTION, row["input"],
                             PromptFormat(meta.prompt_format, tuple(meta.stop)))
    assert engine.prompts == [expected, expected, expected]  # eval: base, then adapter; query
    assert job.requests[0].prompt == expected


def test_format_is_the_bases_own_template_or_the_documented_plain_one(trained):
    _, out, tokenizer, kind = trained
    meta = load_meta(out)
    fmt = PromptFormat(meta.prompt_format, tuple(meta.stop))
    prompt = format_prompt(INSTRUCTION, "12 + 16", fmt)
    if kind == "chat":
        message = [{"role": "user", "content": f"{INSTRUCTION}\n\n12 + 16"}]
        rendered = tokenizer.apply_chat_template(message, tokenize=False,
                                                 add_generation_prompt=True)
        assert prompt == rendered.removeprefix("<bos>")  # the tokenizer adds BOS itself
        assert fmt.response_marker == "<start_of_turn>model\n"
        assert parse_response("28<end_of_turn>\n<start_of_turn>user\n", fmt) == "28"
    else:
        assert prompt == f"### Instruction:\n{INSTRUCTION}\n\n### Input:\n12 + 16\n\n" \
                         "### Response:\n"
        assert fmt.response_marker == "### Response:\n"
        assert parse_response("28\n### Instruction:\nmore", fmt) == "28"


def test_plain_format_output_is_unchanged():
    assert format_prompt("Add the numbers.", "2 + 3") == (
        "### Instruction:\nAdd the numbers.\n\n### Input:\n2 + 3\n\n### Response:\n")
    assert format_prompt("What is 2 + 3?") == "### Instruction:\nWhat is 2 + 3?\n\n### Response:\n"


def test_chat_training_labels_end_with_the_end_of_turn_marker(trained):
    cfg, _, tokenizer, kind = trained
    prep = prepare(cfg)
    item = prep.train_items[0]
    answer = tokenizer.decode(item.input_ids[item.answer_start:])
    if kind == "chat":
        assert answer.endswith("<end_of_turn>") and "<eos>" not in answer
    else:
        assert answer.endswith("<eos>")
