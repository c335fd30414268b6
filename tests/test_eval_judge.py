"""The LLM judge through the official openai client, against a real HTTP server on loopback
that plays an OpenAI-compatible judge model."""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from locollm.errors import LocollmError
from locollm.evaluate.benchmark import BenchItem
from locollm.evaluate.judge import JudgeConfig, parse_score
from locollm.evaluate.scorers import ScoringConfig, score_item


class JudgeServer(ThreadingHTTPServer):
    """Answers POST /v1/chat/completions with the next of ``replies``; records each request."""

    def __init__(self, replies: list[str], status: int = 200) -> None:
        super().__init__(("127.0.0.1", 0), JudgeHandler)
        self.replies = list(replies)
        self.status = status
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class JudgeHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server: JudgeServer = self.server  # type: ignore[assignment]
        with server.lock:
            server.requests.append({"path": self.path, "body": body,
                                    "auth": self.headers.get("Authorization")})
            reply = server.replies.pop(0) if server.replies else "SCORE: 0"
        if server.status != 200:
            payload = {"error": {"message": "invalid api key", "type": "auth"}}
        else:
            payload = {"id": "x", "object": "chat.completion", "created": 0,
                       "model": body["model"],
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": reply}}]}
        data = json.dumps(payload).encode()
        self.send_response(server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def judge_server(replies: list[str], status: int = 200):
    server = JudgeServer(replies, status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


ESSAY = BenchItem(3, ["Water boils at 100 degrees Celsius at sea level."],
                  "At what temperature does water boil?", evaluation_type="judge",
                  rubric="10 if it says 100 C at sea level; 0 otherwise.")


def test_three_runs_give_a_mean_and_a_spread():
    with judge_server(["Good answer.\nSCORE: 8", "SCORE: 6", "Fine. Score = 10"]) as server:
        config = JudgeConfig(server.url, "judge-model", api_key="k-123")
        result = score_item("It boils at 100 C.", ESSAY, ScoringConfig(judge=config))
    assert result.runs == [0.8, 0.6, 1.0] and result.value == pytest.approx(0.8)
    assert result.correct  # mean 0.8 >= pass mark 0.7
    assert "± 0.16" in result.detail and "over 3 run(s)" in result.detail
    assert len(server.requests) == 3
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer k-123"
    body = first["body"]
    assert body["model"] == "judge-model" and body["temperature"] == 0.7
    user = body["messages"][-1]["content"]
    assert ESSAY.rubric in user and "It boils at 100 C." in user and ESSAY.reference in user
    assert [r["body"]["seed"] for r in server.requests] == [0, 1, 2]


def test_a_low_mean_fails_and_runs_without_a_score_are_left_out():
    with judge_server(["SCORE: 2", "I cannot grade this.", "SCORE: 4"]) as server:
        config = JudgeConfig(server.url, "m", runs=3)
        result = score_item("It boils at 50 C.", ESSAY, ScoringConfig(judge=config))
    assert not result.correct and result.value == pytest.approx(0.3)
    assert result.runs == [0.2, 0.4] and "1 without a score" in result.detail


def test_no_score_in_any_run():
    with judge_server(["hmm", "hmm"]) as server:
        result = score_item("x", ESSAY, ScoringConfig(judge=JudgeConfig(server.url, "m",
                                                                        runs=2)))
    assert not result.correct and "no score" in result.detail


def test_unreachable_or_refusing_judge_is_a_clear_error():
    with judge_server([]) as server:
        url = server.url
    with pytest.raises(LocollmError, match="cannot be reached"):
        score_item("x", ESSAY, ScoringConfig(judge=JudgeConfig(url, "m", timeout_s=5)))
    with judge_server([], status=401) as server, pytest.raises(LocollmError, match="HTTP 401"):
        score_item("x", ESSAY, ScoringConfig(judge=JudgeConfig(server.url, "m")))


def test_judge_items_need_a_judge():
    with pytest.raises(LocollmError, match="needs an LLM judge"):
        score_item("x", ESSAY, ScoringConfig())


@pytest.mark.parametrize(("text", "value"), [
    ("SCORE: 7", 7.0), ("score=3.5", 3.5), ("I give it 9/10.", 9.0), ("SCORE: 14", 10.0),
    ("Score: 2\n...\nSCORE: 5", 5.0), ("no number", None),
])
def test_parse_score(text, value):
    assert parse_score(text) == value
