"""`locollm data synth` against a real OpenAI-compatible HTTP server on loopback.

The stub server stands in for a frontier API (a network these tests do not have): it speaks
the chat-completions protocol over real HTTP and answers from a fixed list.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from conftest import REPO, write_jsonl

from locollm.cli import cli
from locollm.data.synth import SynthConfig, SynthError, parse_example, synthesize

VALIDATOR = f"{REPO}/adapters/math/training/validate.py:validate"
INSTR = "Solve the following arithmetic word problem. Show your steps."


def example(question: str, a: int, b: int, total: int | None = None) -> str:
    total = a + b if total is None else total
    return json.dumps({"instruction": INSTR, "input": question,
                       "output": f"Step 1: {a} + {b} = {total}\n\nThe answer is {total}."})


GOOD = [example(f"A garden has {a} red roses and {b} white roses growing along the old stone "
                f"wall behind the village school, next to the pond where the ducks swim. How "
                f"many roses are there in the garden?", a, b)
        for a, b in ((12, 30), (45, 17), (23, 51), (38, 44))]
ANSWERS = [
    GOOD[0],
    "Sure! Here is one:\n```json\n" + GOOD[1] + "\n```",  # chatter and a fence around it
    GOOD[0],  # exact duplicate
    GOOD[2].replace("growing", "planted"),  # near duplicate of GOOD[2]... accepted first below
    GOOD[2],
    "I cannot do that.",  # no JSON
    json.dumps({"instruction": INSTR, "output": 5}),  # wrong type
    example("Tom has 20 marbles and wins 15 more at school today. How many marbles now?",
            20, 15, total=36),  # wrong arithmetic: the validator rejects it
    GOOD[3],
    example("Ana has 12 cards and gets 9 more. How many cards does Ana have now?", 12, 9),
]


class Stub:
    """A chat-completions server answering from a list; records what it was sent."""

    def __init__(self, answers: list[str], status: int = 200, fail_first: int = 0,
                 refuse_after: int | None = None) -> None:
        self.answers, self.status, self.requests = list(answers), status, []
        self.fail_first, self.refuse_after = fail_first, refuse_after
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stub.lock:
                    stub.requests.append((self.path, dict(self.headers), body))
                    failing = len(stub.requests) <= stub.fail_first
                    content = "" if failing else stub.answers.pop(0) if stub.answers else "{}"
                status = 503 if failing else stub.status
                if stub.refuse_after is not None and len(stub.requests) > stub.refuse_after:
                    status = 401
                if status != 200:
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "invalid api key"}}')
                    return
                data = json.dumps({"id": "x", "object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    servers = []

    def start(answers=ANSWERS, status=200, fail_first=0, refuse_after=None):
        servers.append(Stub(answers, status, fail_first, refuse_after))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def read(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_batches_accept_and_reject_with_reasons(tmp_path, stub, monkeypatch):
    server = stub()
    monkeypatch.setenv("TEST_KEY", "sk-test")
    out = tmp_path / "training" / "synthetic.jsonl"
    cfg = SynthConfig(endpoint=server.url, model="frontier-1", output=out,
                      domain="arithmetic word problem", count=10, batch_size=4, workers=1,
                      validator=VALIDATOR, api_key_env="TEST_KEY")
    seen = []
    result = synthesize(cfg, on_batch=lambda n, r: seen.append((n, r.accepted, r.rejected)))
    assert (result.accepted, result.rejected, result.batches) == (5, 5, 3)
    assert result.reasons == {"duplicate": 2, "schema": 2, "validator": 1}
    assert seen[-1] == (3, 5, 5) and len(seen) == 3
    accepted = read(out)
    assert [r["input"][:20] for r in accepted] == [json.loads(a)["input"][:20] for a in
                                                   (GOOD[0], GOOD[1], ANSWERS[3], GOOD[3],
                                                    ANSWERS[9])]
    assert all(r["source"] == "synth:frontier-1" for r in accepted)
    rejected = read(tmp_path / "training" / "synthetic.rejected.jsonl")
    assert [r["reason"].split(":")[0] for r in rejected] == [
        "duplicate", "duplicate", "schema", "schema", "validator"]
    assert "wrong arithmetic: 20 + 15 = 36" in rejected[-1]["reason"]
    assert rejected[1]["reason"].startswith("duplicate: an accepted prompt at similarity 0.")
    # the request was the guide's template, as an authorised chat completion
    path, headers, body = server.requests[0]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer sk-test"
    prompt = body["messages"][0]["content"]
    assert prompt.startswith("Generate a arithmetic word problem training example")
    assert '{"instruction": "...", "input": "...", "output": "..."}' in prompt
    assert body["model"] == "frontier-1"
    log = (tmp_path / "training" / "TRAINING_LOG.md").read_text()
    assert "10 answers in 3 batch(es)" in log and "rejection rate 50.0%" in log
    assert "duplicate 2, schema 2, validator 1" in log and "synth:frontier-1" in log


def test_extending_a_file_checks_against_it_and_the_benchmark(tmp_path, stub):
    out = write_jsonl(tmp_path / "data.jsonl", [json.loads(GOOD[0])])
    bench = write_jsonl(tmp_path / "bench.jsonl", [json.loads(GOOD[3])])
    (tmp_path / "TRAINING_LOG.md").write_text("# log\n\nearlier notes stay\n")
    server = stub([GOOD[0], GOOD[3], GOOD[1]])
    result = synthesize(SynthConfig(endpoint=server.url, model="m", output=out, domain="math",
                                    count=3, batch_size=3, benchmark=bench))
    assert (result.accepted, result.rejected) == (1, 2)
    assert result.reasons == {"duplicate": 1, "contamination": 1}
    assert len(read(out)) == 2
    log = (tmp_path / "TRAINING_LOG.md").read_text()
    assert log.startswith("# log\n\nearlier notes stay\n") and "rejection rate 66.7%" in log


def test_cli_synth_end_to_end_and_data_check_accepts_the_log(tmp_path, stub):
    server = stub()
    out = tmp_path / "training" / "dataset.jsonl"
    result = CliRunner().invoke(cli, [
        "data", "synth", "--endpoint", server.url, "--model", "frontier-1", "-o", str(out),
        "--domain", "arithmetic word problem", "-n", "10", "--batch-size", "5",
        "--validator", VALIDATOR])
    assert result.exit_code == 0, result.output
    assert "accepted 5" in result.output and "rejected 5 (50.0%" in result.output
    check = CliRunner().invoke(cli, ["data", "check", str(out), "--json"])
    sources = next(i for i in json.loads(check.stdout)["items"]
                   if i["name"] == "sources documented")
    # the run's log entry names the output file and the synth:frontier-1 source of its rows
    assert sources["status"] == "pass" and sources["data"]["missing"] == []
    assert "synth:frontier-1" in sources["data"]["expected"]


def test_refused_key_and_unreachable_endpoint_are_messages(tmp_path, stub):
    server = stub(status=401)
    runner = CliRunner()
    args = ["data", "synth", "--model", "m", "-o", str(tmp_path / "o.jsonl"), "--domain", "x",
            "--retries", "0"]
    result = runner.invoke(cli, [*args, "--endpoint", server.url])
    assert result.exit_code == 2 and "HTTP 401" in result.output
    assert "fix: set OPENAI_API_KEY" in result.output
    server.close()
    result = runner.invoke(cli, [*args, "--endpoint", server.url])
    assert result.exit_code == 2 and "cannot reach" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_overloaded_server_is_retried(tmp_path, stub):
    server = stub([GOOD[0]], fail_first=1)
    result = synthesize(SynthConfig(endpoint=server.url, model="m", domain="math", count=1,
                                    output=tmp_path / "o.jsonl", retries=1))
    assert result.accepted == 1 and len(server.requests) == 2


def test_an_interrupted_run_keeps_and_logs_its_finished_batches(tmp_path, stub):
    server = stub(GOOD, refuse_after=2)
    out = tmp_path / "o.jsonl"
    with pytest.raises(SynthError, match="HTTP 401"):
        synthesize(SynthConfig(endpoint=server.url, model="m", domain="math", count=6,
                               batch_size=2, workers=1, output=out))
    assert len(read(out)) == 2
    assert "2 answers in 1 batch(es)" in (tmp_path / "TRAINING_LOG.md").read_text()


def test_bad_validator_is_an_error_before_any_request(tmp_path, stub):
    server = stub()
    result = CliRunner().invoke(cli, ["data", "synth", "--endpoint", server.url, "--model", "m",
                                      "-o", str(tmp_path / "o.jsonl"), "--domain", "x",
                                      "--validator", "nosuch.py:check"])
    assert result.exit_code == 2 and "cannot load validator" in result.output
    assert server.requests == []


def test_parse_example_finds_the_object():
    row, why = parse_example('noise {"a": } then {"instruction": "i", "output": "o"} tail')
    assert row == {"instruction": "i", "input": "", "output": "o"} and why is None
    assert parse_example('{"instruction": "i"}') == (None, "'output' is missing")
