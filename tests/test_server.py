"""The OpenAI-compatible server, for real: llama.cpp, the embedded base, LoRA GGUFs, HTTP."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
from helpers_adapters import adapters_runtime, serving

from locollm.errors import AdapterError
from locollm.prompt import STOP_STRINGS, format_prompt, parse_response
from locollm.runtime.server import Service
from locollm.runtime.session import Runtime

INSTRUCTION = "Solve the following arithmetic word problem."
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_models):
    """One server for the module: base + math (nonzero LoRA) + zero (B = 0) + registry."""
    with (adapters_runtime(tmp_path_factory.mktemp("serve"), shared_models,
                           instruction_for=lambda f: INSTRUCTION if f.name == "math" else None)
          as runtime, serving(runtime) as srv):
        yield srv


def call(server, method, path, body=None, *, raw: bytes | None = None, headers=None):
    """(status, parsed JSON or raw text) of one request."""
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers={"Content-Type": "application/json",
                                                   **(headers or {})})
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    if response.getheader("Content-Type") == "application/json":
        return response.status, json.loads(text)
    return response.status, text


def complete(server, model, prompt=QUESTION, **extra):
    status, body = call(server, "POST", "/v1/completions",
                        {"model": model, "prompt": prompt, "max_tokens": 12, **extra})
    assert status == 200, body
    return body


def chat(server, model, content=QUESTION, **extra):
    status, body = call(server, "POST", "/v1/chat/completions",
                        {"model": model, "max_tokens": 16,
                         "messages": [{"role": "user", "content": content}], **extra})
    assert status == 200, body
    return body


def events(text: str) -> list:
    """The data of each server-sent event."""
    return [line[len("data: "):] for line in text.split("\n\n") if line.startswith("data: ")]


def test_models_health_and_lora_adapters(server):
    status, models = call(server, "GET", "/v1/models")
    assert status == 200 and models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["gemma-3-270m", "math", "zero", "auto"]
    assert models["data"][1]["parent"] == "gemma-3-270m"
    assert call(server, "GET", "/v1/models/math")[1]["id"] == "math"
    assert call(server, "GET", "/v1/models/nope")[0] == 404
    status, health = call(server, "GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["adapters"] == ["math", "zero"]
    chat(server, "zero")
    status, loras = call(server, "GET", "/lora-adapters")
    assert [(a["name"], a["active"], a["scale"]) for a in loras] == [
        ("math", False, 0.0), ("zero", True, 1.0)]
    assert all(a["path"].endswith("adapter.gguf") and a["lora_rank"] == 4 for a in loras)


def test_the_model_field_selects_the_adapter(server):
    base = complete(server, "gemma-3-270m")
    assert base["object"] == "text_completion" and base["model"] == "gemma-3-270m"
    assert base["usage"]["completion_tokens"] > 0 and base["choices"][0]["text"]
    tuned = complete(server, "math")
    assert tuned["model"] == "math" and tuned["locollm"]["adapter"] == "math"
    assert tuned["choices"][0]["text"] != base["choices"][0]["text"]
    assert complete(server, "zero")["choices"][0]["text"] == base["choices"][0]["text"]
    assert complete(server, "base")["choices"][0]["text"] == base["choices"][0]["text"]
    assert complete(server, "gemma-3-270m")["choices"][0]["text"] == base["choices"][0]["text"]


def test_chat_uses_the_one_prompt_format(server):
    runtime = server.service.runtime
    reply = chat(server, "gemma-3-270m")
    assert reply["object"] == "chat.completion"
    message = reply["choices"][0]["message"]
    with server.service.lock:
        out = runtime.engine.complete(format_prompt(QUESTION), max_tokens=16, stop=STOP_STRINGS)
    assert message == {"role": "assistant", "content": parse_response(out.text)}
    # with an adapter, a bare question becomes the input of its training instruction
    tuned = chat(server, "math", "Tom has 3 apples and gets 4 more.")
    with server.service.lock:
        out = runtime.engine.complete(format_prompt(INSTRUCTION, "Tom has 3 apples and gets "
                                                    "4 more."), adapter="math", max_tokens=16,
                                      stop=STOP_STRINGS)
    assert tuned["choices"][0]["message"]["content"] == parse_response(out.text)
    # a system message is the instruction
    system = {"role": "system", "content": "Answer in one word."}
    status, body = call(server, "POST", "/v1/chat/completions", {
        "model": "base", "max_tokens": 8,
        "messages": [system, {"role": "user", "content": [{"type": "text", "text": QUESTION}]}]})
    with server.service.lock:
        out = runtime.engine.complete(format_prompt("Answer in one word.", QUESTION),
                                      max_tokens=8, stop=STOP_STRINGS)
    assert status == 200 and body["choices"][0]["message"]["content"] == parse_response(out.text)


def test_auto_routes_by_registry_keywords(server):
    routed = chat(server, "auto", "How many apples if I add 3 and 4?")
    assert routed["model"] == "math"
    assert routed["locollm"]["matched"] == ["add", "how many"]
    plain = chat(server, "auto", QUESTION)
    assert plain["model"] == "gemma-3-270m" and plain["locollm"]["adapter"] is None
    assert complete(server, "auto", "zero point energy")["model"] == "zero"


@pytest.mark.parametrize("endpoint", ["/v1/completions", "/v1/chat/completions"])
def test_streaming_matches_the_whole_answer(server, endpoint):
    is_chat = "chat" in endpoint
    request = ({"messages": [{"role": "user", "content": QUESTION}]} if is_chat
               else {"prompt": QUESTION})
    request |= {"model": "math", "max_tokens": 12}
    whole = call(server, "POST", endpoint, request)[1]
    status, text = call(server, "POST", endpoint, request | {"stream": True})
    assert status == 200
    data = events(text)
    assert data[-1] == "[DONE]" and len(data) >= 3
    chunks = [json.loads(d) for d in data[:-1]]
    assert len({c["id"] for c in chunks}) == 1 and all(c["model"] == "math" for c in chunks)
    if is_chat:
        assert chunks[0]["object"] == "chat.completion.chunk"
        streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        expected = whole["choices"][0]["message"]["content"]
        assert streamed.strip() == expected
    else:
        streamed = "".join(c["choices"][0]["text"] for c in chunks)
        assert streamed == whole["choices"][0]["text"]
    assert chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert chunks[-1]["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize(("method", "path", "body", "status", "param"), [
    ("POST", "/v1/completions", {"prompt": "x"}, 400, "model"),
    ("POST", "/v1/completions", {"model": "nope", "prompt": "x"}, 404, "model"),
    ("POST", "/v1/completions", {"model": "math"}, 400, "prompt"),
    ("POST", "/v1/completions", {"model": "math", "prompt": "x", "max_tokens": "9"}, 400,
     "max_tokens"),
    ("POST", "/v1/completions", {"model": "math", "prompt": "x", "temperature": 5}, 400,
     "temperature"),
    ("POST", "/v1/completions", {"model": "math", "prompt": "x", "n": 2}, 400, "n"),
    ("POST", "/v1/completions", {"model": "math", "prompt": "x", "stop": [1]}, 400, "stop"),
    ("POST", "/v1/chat/completions", {"model": "math", "messages": []}, 400, "messages"),
    ("POST", "/v1/chat/completions", {"model": "math", "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}, 400,
     "messages"),
    ("POST", "/v1/chat/completions", {"model": "math", "messages": [
        {"role": "wizard", "content": "hi"}]}, 400, "messages"),
    ("POST", "/v1/chat/completions", {"model": "math", "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]}, 400,
     "messages"),
    ("GET", "/v1/completions", None, 405, None),
    ("POST", "/v1/models", {}, 405, None),
    ("GET", "/v2/anything", None, 404, None),
])
def test_bad_requests_get_openai_errors(server, method, path, body, status, param):
    got, reply = call(server, method, path, body)
    assert got == status, reply
    assert set(reply) == {"error"} and reply["error"]["message"]
    assert reply["error"]["param"] == param
    if status == 404 and param == "model":
        assert reply["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("raw", [b"{bad json", b"[1, 2]", b"\xff\xfe"])
def test_unparseable_bodies_are_400(server, raw):
    status, reply = call(server, "POST", "/v1/chat/completions", raw=raw)
    assert status == 400 and reply["error"]["type"] == "invalid_request_error"


def test_oversized_and_overlong_requests(server):
    status, reply = call(server, "POST", "/v1/completions", raw=b"{}",
                         headers={"Content-Length": str(10 << 20)})
    assert status == 413 and "error" in reply
    status, reply = call(server, "POST", "/v1/completions",
                         {"model": "base", "prompt": "word " * 3000, "max_tokens": 4})
    assert status == 400 and "over the context" in reply["error"]["message"]
    assert complete(server, "base")["choices"][0]["text"]  # still serving


def test_concurrent_requests_are_serialized_and_isolated(server):
    expected = {m: complete(server, m)["choices"][0]["text"] for m in ("math", "base")}
    results, errors = [], []

    def worker(model):
        try:
            results.append((model, complete(server, model)["choices"][0]["text"]))
        except Exception as exc:  # collected: an assert in a thread would pass silently
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(m,)) for m in ["math", "base"] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 6
    assert all(text == expected[model] for model, text in results)


def test_adapter_names_may_not_shadow_reserved_ids():
    runtime = Runtime(engine=None, base_name="gemma-3-270m", metas={"auto": None},
                      folders={}, router=None)
    with pytest.raises(AdapterError, match="may not be named 'auto'"):
        Service(runtime)


def test_answers_do_not_depend_on_the_previous_request(server):
    """Same request, same answer: the engine does not reuse the last prompt's cached prefix
    (a prefix evaluated in another batch rounds differently and greedy decoding diverges)."""
    after_other = complete(server, "math", QUESTION)["choices"][0]["text"]
    after_same = complete(server, "math", QUESTION)["choices"][0]["text"]
    complete(server, "math", "Something else entirely")
    assert complete(server, "math", QUESTION)["choices"][0]["text"] == after_other == after_same


def test_a_client_leaving_mid_stream_frees_the_engine(server):
    expected = complete(server, "math")["choices"][0]["text"]
    body = json.dumps({"model": "base", "prompt": QUESTION, "max_tokens": 1900,
                       "stream": True}).encode()
    with socket.create_connection(server.server_address[:2], timeout=60) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.0\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        assert sock.recv(4096).startswith(b"HTTP/1.0 200")
    # gone mid-answer: the generation stops at its next write instead of running ~1900
    # tokens (about a minute) with the lock held
    start = time.perf_counter()
    assert complete(server, "math")["choices"][0]["text"] == expected
    assert time.perf_counter() - start < 20


def test_closing_the_server_waits_for_the_generation_in_flight(tmp_path, shared_models):
    results = []
    with adapters_runtime(tmp_path, shared_models) as runtime:
        with serving(runtime) as srv:
            request = {"model": "base", "prompt": QUESTION, "max_tokens": 40}
            thread = threading.Thread(
                target=lambda: results.append(call(srv, "POST", "/v1/completions", request)))
            thread.start()
            deadline = time.perf_counter() + 30
            while not srv.service.lock.locked() and time.perf_counter() < deadline:
                time.sleep(0.005)
        # closed while generating: the engine is freed only after the answer (no crash)
        assert runtime.engine.llm is None
        thread.join(60)
    status, body = results[0]
    assert status == 200 and body["usage"]["completion_tokens"] > 0
