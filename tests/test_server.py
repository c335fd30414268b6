"""The OpenAI-compatible server, for real: llama.cpp, the embedded base, LoRA GGUFs, uvicorn on
loopback, and the official ``openai`` client."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import openai
import pytest
from helpers_adapters import adapters_runtime, serving

from locollm.errors import AdapterError, LocollmError
from locollm.prompt import STOP_STRINGS, format_completion, format_prompt, parse_response
from locollm.runtime.generation import GenRequest
from locollm.runtime.server import ServeConfig, Service, make_server
from locollm.runtime.session import Runtime

INSTRUCTION = "Solve the following arithmetic word problem."
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory, shared_models):
    """Base + math (nonzero LoRA) + zero (B = 0) + registry, shared by the module."""
    with adapters_runtime(tmp_path_factory.mktemp("serve"), shared_models, router="keywords",
                          instruction_for=lambda f: INSTRUCTION if f.name == "math" else None
                          ) as rt:
        yield rt


@pytest.fixture(scope="module")
def server(runtime):
    with serving(runtime, keep_runtime=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=120)


def call(server, method, path, body=None, *, raw: bytes | None = None, headers=None):
    """(status, parsed JSON or raw text) of one request."""
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers={"Content-Type": "application/json",
                                                   **(headers or {})})
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    if response.getheader("Content-Type", "").startswith("application/json"):
        return response.status, json.loads(text)
    return response.status, text


def direct(runtime, prompt, adapter=None, max_tokens=16, stop=STOP_STRINGS):
    return runtime.engine.complete(prompt, adapter=adapter, max_tokens=max_tokens, stop=stop)


def test_models_health_and_lora_adapters(server, client):
    assert [m.id for m in client.models.list().data] == ["gemma-3-270m", "math", "zero", "auto"]
    assert client.models.retrieve("math").id == "math"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")
    status, health = call(server, "GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["adapters"] == ["math", "zero"]
    client.chat.completions.create(model="zero", max_tokens=4,
                                   messages=[{"role": "user", "content": QUESTION}])
    status, loras = call(server, "GET", "/lora-adapters")
    assert [(a["name"], a["active"], a["scale"]) for a in loras] == [
        ("math", False, 0.0), ("zero", True, 1.0)]
    assert all(a["path"].endswith("adapter.gguf") and a["lora_rank"] == 4 for a in loras)
    status, schema = call(server, "GET", "/openapi.json")
    assert status == 200 and "/v1/chat/completions" in schema["paths"]


def test_the_model_field_selects_the_adapters(client, runtime):
    def text(model, **extra):
        return client.completions.create(model=model, prompt=QUESTION, max_tokens=12,
                                         **extra).choices[0].text

    base = text("gemma-3-270m")
    assert base == direct(runtime, QUESTION, max_tokens=12, stop=()).text
    tuned = text("math")
    assert tuned != base and tuned == direct(runtime, QUESTION, "math", 12, ()).text
    assert text("zero") == text("base") == base
    # several adapters: by '+' in the model id, or with scales in the extension field
    both = client.completions.create(model="math+zero", prompt=QUESTION, max_tokens=12)
    assert both.model == "math+zero" and both.choices[0].text == tuned  # zero adds nothing
    half = client.completions.create(model="base", prompt=QUESTION, max_tokens=12,
                                     extra_body={"adapters": [{"name": "math", "scale": 0.5}]})
    assert half.model == "math*0.5" and half.choices[0].text not in (base, tuned)
    assert half.choices[0].text == runtime.engine.complete(
        QUESTION, max_tokens=12, adapters=[("math", 0.5)]).text


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["math", "gemma-3-270m"])
def test_a_three_turn_conversation(client, runtime, model, stream):
    """The whole conversation goes in, in the adapter's prompt format, turn by turn."""
    adapter = None if model.startswith("gemma") else "math"
    head = INSTRUCTION if adapter else None
    messages, expected_prompt = [], ""
    for turn in ("Tom has 3 apples and gets 4 more. How many now?",
                 "And if he then eats 2?", "Now double that."):
        messages.append({"role": "user", "content": turn})
        prompt = expected_prompt + (format_prompt(head, turn) if head else format_prompt(turn))
        reply = client.chat.completions.create(model=model, messages=messages, max_tokens=12,
                                               stream=stream)
        if stream:
            chunks = list(reply)
            assert chunks[0].choices[0].delta.role == "assistant"
            content = "".join(c.choices[0].delta.content or "" for c in chunks).strip()
            assert chunks[-1].choices[0].finish_reason in ("stop", "length")
        else:
            content = reply.choices[0].message.content
        expected = parse_response(direct(runtime, prompt, adapter, 12).text)
        assert content == expected
        messages.append({"role": "assistant", "content": content})
        expected_prompt = prompt + format_completion(content) + "\n\n"


def test_system_messages_are_the_instruction(client, runtime):
    system = {"role": "system", "content": "Answer in one word."}
    reply = client.chat.completions.create(
        model="base", max_tokens=8,
        messages=[system, {"role": "user", "content": [{"type": "text", "text": QUESTION}]}])
    out = direct(runtime, format_prompt("Answer in one word.", QUESTION), max_tokens=8)
    assert reply.choices[0].message.content == parse_response(out.text)


def test_auto_routes_with_the_router(client):
    routed = client.chat.completions.create(
        model="auto", max_tokens=4, messages=[{"role": "user",
                                               "content": "How many apples if I add 3 and 4?"}])
    assert routed.model == "math" and routed.model_extra["locollm"]["matched"] == [
        "add", "how many"]
    plain = client.chat.completions.create(model="auto", max_tokens=4,
                                           messages=[{"role": "user", "content": QUESTION}])
    assert plain.model == "gemma-3-270m"


def test_sampling_fields_are_honoured(client):
    def answer(**extra):
        return client.completions.create(model="base", prompt="Write a sentence about the sea.",
                                         max_tokens=10, **extra)

    drawn = [answer(temperature=1.0, seed=s).choices[0].text for s in (3, 3, 4)]
    assert drawn[0] == drawn[1] != drawn[2]
    several = answer(temperature=1.0, seed=3, n=2)
    assert [c.index for c in several.choices] == [0, 1]
    assert several.choices[0].text == drawn[0] and several.choices[1].text == drawn[2]
    greedy = answer().choices[0].text
    cut = answer(stop=[greedy.split()[1]]).choices[0]
    assert cut.finish_reason == "stop" and greedy.startswith(cut.text)
    assert len(cut.text) < len(greedy)
    assert answer(frequency_penalty=2.0, presence_penalty=2.0).choices[0].text != greedy
    assert answer(logit_bias={"1": -100}).choices[0].text == greedy  # 1 = <eos>: no change
    json_reply = client.chat.completions.create(
        model="base", max_tokens=40, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Describe a cat as JSON."}])
    text = json_reply.choices[0].message.content
    assert text.startswith("{")
    if json_reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)


def test_stream_options_include_usage(client):
    chunks = list(client.chat.completions.create(
        model="math", max_tokens=6, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": QUESTION}]))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    plain = list(client.chat.completions.create(
        model="math", max_tokens=6, stream=True,
        messages=[{"role": "user", "content": QUESTION}]))
    assert all(c.usage is None for c in plain)


@pytest.mark.parametrize(("path", "body", "status", "param"), [
    ("/v1/completions", {"prompt": "x"}, 400, "model"),
    ("/v1/completions", {"model": "nope", "prompt": "x"}, 404, "model"),
    ("/v1/completions", {"model": "math"}, 400, "prompt"),
    ("/v1/completions", {"model": "math", "prompt": "x", "max_tokens": "nine"}, 400,
     "max_tokens"),
    ("/v1/completions", {"model": "math", "prompt": "x", "max_tokens": 10 ** 6}, 400,
     "max_tokens"),
    ("/v1/completions", {"model": "math", "prompt": "x", "temperature": 5}, 400,
     "temperature"),
    ("/v1/completions", {"model": "math", "prompt": "x", "n": 20}, 400, "n"),
    ("/v1/completions", {"model": "math", "prompt": "x", "stop": [1]}, 400, "stop"),
    ("/v1/completions", {"model": "math", "prompt": "x", "logprobs": 2}, 400, "logprobs"),
    ("/v1/completions", {"model": "math", "prompt": "x", "echo": True}, 400, "echo"),
    ("/v1/completions", {"model": "math", "prompt": "x", "mystery": 1}, 400, "mystery"),
    ("/v1/completions", {"model": "math", "prompt": "x", "logit_bias": {"a": 1}}, 400,
     "logit_bias"),
    ("/v1/completions", {"model": "math", "prompt": "x", "stream_options": {
        "include_usage": True}}, 400, "stream_options"),
    ("/v1/completions", {"model": "math", "prompt": "x", "adapters": [{"name": "math"}]},
     400, "model"),
    ("/v1/completions", {"model": "base", "prompt": "x", "adapters": [{"name": "nope"}]},
     404, "adapters"),
    ("/v1/chat/completions", {"model": "math", "messages": []}, 400, "messages"),
    ("/v1/chat/completions", {"model": "math", "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}, 400,
     "messages"),
    ("/v1/chat/completions", {"model": "math", "messages": [
        {"role": "wizard", "content": "hi"}]}, 400, "messages"),
    ("/v1/chat/completions", {"model": "math", "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]}, 400,
     "messages"),
    ("/v1/chat/completions", {"model": "math", "tools": [{"type": "function"}], "messages": [
        {"role": "user", "content": "hi"}]}, 400, "tools"),
    ("/v1/chat/completions", {"model": "math", "response_format": {"type": "json_schema"},
                              "messages": [{"role": "user", "content": "hi"}]}, 400,
     "response_format"),
])
def test_bad_requests_get_openai_errors(server, path, body, status, param):
    got, reply = call(server, "POST", path, body)
    assert got == status, reply
    assert set(reply) == {"error"} and reply["error"]["message"]
    assert reply["error"]["param"] == param
    if status == 404:
        assert reply["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/v1/completions", 405), ("POST", "/v1/models", 405), ("GET", "/v2/x", 404)])
def test_unknown_endpoints_and_methods(server, method, path, status):
    got, reply = call(server, method, path)
    assert got == status and reply["error"]["message"]


@pytest.mark.parametrize("raw", [b"{bad json", b"[1, 2]", b"\xff\xfe", b"null"])
def test_unparseable_bodies_are_400(server, raw):
    status, reply = call(server, "POST", "/v1/chat/completions", raw=raw)
    assert status == 400 and reply["error"]["type"] == "invalid_request_error"


def test_oversized_and_overlong_requests(server, client):
    status, reply = call(server, "POST", "/v1/completions", raw=b"{}",
                         headers={"Content-Length": str(10 << 20)})
    assert status == 413 and "error" in reply
    with pytest.raises(openai.BadRequestError, match="over the context"):
        client.completions.create(model="base", prompt="word " * 3000, max_tokens=4)
    assert client.completions.create(model="base", prompt=QUESTION, max_tokens=2).choices


def test_concurrent_requests_are_batched_and_isolated(server, runtime):
    expected = {m: call(server, "POST", "/v1/completions", {
        "model": m, "prompt": QUESTION, "max_tokens": 12})[1]["choices"][0]["text"]
        for m in ("math", "base", "zero")}
    results, errors = [], []
    before = runtime.engine.scheduler.max_batch

    def worker(model):
        try:
            body = call(server, "POST", "/v1/completions",
                        {"model": model, "prompt": QUESTION, "max_tokens": 12})[1]
            results.append((model, body["choices"][0]["text"]))
        except Exception as exc:  # collected: an assert in a thread would pass silently
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(m,)) for m in ["math", "base", "zero"] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 9
    assert all(text == expected[model] for model, text in results)
    assert runtime.engine.scheduler.max_batch >= max(before, 2)


def test_a_client_leaving_mid_stream_cancels_its_generation(server, runtime):
    body = json.dumps({"model": "base", "prompt": QUESTION, "max_tokens": 1900,
                       "stream": True}).encode()
    with socket.create_connection(server.server_address, timeout=60) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    deadline = time.perf_counter() + 30
    while runtime.engine.scheduler.running and time.perf_counter() < deadline:
        time.sleep(0.05)
    assert runtime.engine.scheduler.running == 0  # cancelled, not ~1900 tokens later


def test_adapter_names_may_not_shadow_reserved_ids():
    runtime = Runtime(engine=None, base_name="gemma-3-270m", metas={"auto": None},
                      folders={}, router=None)
    with pytest.raises(AdapterError, match="may not be named 'auto'"):
        Service(runtime)


def test_safe_defaults(runtime):
    with pytest.raises(LocollmError, match="--api-key"):
        ServeConfig(host="0.0.0.0")
    assert ServeConfig(host="127.0.0.2").host == "127.0.0.2"  # still loopback
    with pytest.raises(LocollmError, match="out of range"):
        ServeConfig(port=99999)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(LocollmError, match="cannot listen"):
            make_server(runtime, "127.0.0.1", taken.getsockname()[1])


def test_the_api_key_is_required_when_set(runtime):
    with serving(runtime, True, api_key="s3cret", cors=("https://ui.example",)) as srv:
        status, reply = call(srv, "GET", "/v1/models")
        assert status == 401 and reply["error"]["code"] == "invalid_api_key"
        assert call(srv, "GET", "/v1/models", headers={"Authorization": "Bearer nope"})[0] == 401
        bad = openai.OpenAI(base_url=srv.url, api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.completions.create(model="base", prompt="hi", max_tokens=2)
        good = openai.OpenAI(base_url=srv.url, api_key="s3cret", max_retries=0)
        assert good.completions.create(model="base", prompt="hi", max_tokens=2).choices
        status, _ = call(srv, "OPTIONS", "/v1/models", headers={
            "Origin": "https://ui.example", "Access-Control-Request-Method": "GET"})
        assert status == 200  # CORS preflight for the allowed origin


def test_a_full_queue_is_429_with_retry_after(runtime):
    with serving(runtime, True, max_queue=0) as srv:
        scheduler = runtime.engine.scheduler
        holds = [scheduler.submit(GenRequest(QUESTION, max_tokens=200))
                 for _ in scheduler.slots]
        try:
            url = urlsplit(srv.url)
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
            conn.request("POST", "/v1/completions", json.dumps(
                {"model": "base", "prompt": "hi", "max_tokens": 2}),
                {"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 429 and response.getheader("Retry-After") == "1"
            assert json.loads(response.read())["error"]["type"] == "rate_limit_error"
        finally:
            for ticket in holds:
                ticket.cancel()
        scheduler.max_queue = None


def test_closing_the_server_waits_for_the_generation_in_flight(tmp_path, shared_models):
    results = []
    with adapters_runtime(tmp_path, shared_models) as runtime:
        with serving(runtime) as srv:
            request = {"model": "base", "prompt": QUESTION, "max_tokens": 40}
            thread = threading.Thread(
                target=lambda: results.append(call(srv, "POST", "/v1/completions", request)))
            thread.start()
            deadline = time.perf_counter() + 30
            while not runtime.engine.scheduler.running and time.perf_counter() < deadline:
                time.sleep(0.005)
        # closed while generating: the engine is freed only after the answer (no crash)
        assert runtime.engine.closed
        thread.join(60)
    status, body = results[0]
    assert status == 200 and body["usage"]["completion_tokens"] > 0


def test_beyond_loopback_a_request_without_the_key_is_refused(runtime):
    """Bound to every interface (0.0.0.0) the key is mandatory; reached here over loopback."""
    with serving(runtime, True, host="0.0.0.0", api_key="k3y") as srv:
        assert srv.server_address[0] == "0.0.0.0"
        port = srv.server_address[1]
        url = f"http://127.0.0.1:{port}/v1"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/v1/chat/completions", json.dumps(
            {"model": "base", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}),
            {"Content-Type": "application/json"})  # no Authorization header
        response = conn.getresponse()
        assert response.status == 401
        assert json.loads(response.read())["error"]["code"] == "invalid_api_key"
        conn.close()
        wrong = openai.OpenAI(base_url=url, api_key="guess", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(model="base", max_tokens=2,
                                          messages=[{"role": "user", "content": "hi"}])
        keyed = openai.OpenAI(base_url=url, api_key="k3y", max_retries=0)
        assert keyed.chat.completions.create(model="base", max_tokens=2, messages=[
            {"role": "user", "content": "hi"}]).choices[0].message.role == "assistant"


def test_cli_serve_starts_answers_and_stops_on_sigterm(tmp_path):
    """`locollm serve` as a user runs it: a port in use is one line; SIGTERM stops it cleanly."""
    import os
    import re
    import signal
    import subprocess
    import sys

    command = [sys.executable, "-c", "from locollm.cli import cli; cli()", "serve",
               "--adapters", ""]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = subprocess.run([*command, "--port", str(taken.getsockname()[1])], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
    assert busy.returncode == 2 and "Traceback" not in busy.stderr
    assert "error: cannot listen on 127.0.0.1:" in busy.stderr
    proc = subprocess.Popen([*command, "--port", "0", "--parallel", "4", "--lanes", "2"],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert re.search(r"\(4 in parallel in 2 lane\(s\) of \d+ thread\(s\)", line), line
        port = int(re.search(r"127\.0\.0\.1:(\d+)/v1", line).group(1))
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x",
                               max_retries=0)
        assert client.completions.create(model="base", prompt="Hi", max_tokens=2).choices
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
