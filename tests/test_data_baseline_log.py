"""The Phase 1 baseline log (`loco query ... --save-log`): fields, append-only, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from conftest import REPO

from locollm.runtime.engine import Completion
from locollm.runtime.query import QueryResult, append_log

SHA = "a" * 64


def result(query: str = "What is 47 + 35?", answer: str = "82") -> QueryResult:
    return QueryResult(query, answer, Completion(answer, 12, 3, 0.123456, "stop", None), None,
                       "gemma-3-270m", SHA, {"max_tokens": 64, "temperature": 0.0,
                                             "top_p": 1.0, "instruction": None})


def test_each_query_appends_one_complete_record(tmp_path):
    log = tmp_path / "logs" / "baseline_tests.jsonl"
    append_log(log, result())
    append_log(log, result("Was ist 2 + 2? — «naïve» ✓", "4"))
    first, second = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert set(first) == {"timestamp", "query", "response", "adapter", "base_model",
                          "base_sha256", "settings", "latency_s", "prompt_tokens",
                          "completion_tokens"}
    assert first["query"] == "What is 47 + 35?" and first["response"] == "82"
    assert first["adapter"] is None and first["base_model"] == "gemma-3-270m"
    assert first["base_sha256"] == SHA and first["settings"]["temperature"] == 0.0
    assert (first["latency_s"], first["prompt_tokens"], first["completion_tokens"]) == \
        (0.1235, 12, 3)
    assert first["timestamp"].endswith("+00:00")
    assert second["query"] == "Was ist 2 + 2? — «naïve» ✓"


def test_earlier_lines_are_never_rewritten(tmp_path):
    log = tmp_path / "baseline.jsonl"
    append_log(log, result())
    before = log.read_bytes()
    append_log(log, result("second"))
    assert log.read_bytes().startswith(before)


def test_a_torn_last_line_stays_isolated(tmp_path):
    """A power cut mid-line leaves a fragment; the next record starts on its own line."""
    log = tmp_path / "baseline.jsonl"
    append_log(log, result("first"))
    with open(log, "ab") as fh:
        fh.write(b'{"timestamp": "2026-01-01T00:00:00+00:00", "query": "torn')
    append_log(log, result("third"))
    lines = log.read_text().splitlines()
    assert len(lines) == 3
    assert json.loads(lines[0])["query"] == "first" and json.loads(lines[2])["query"] == "third"
    assert lines[1].endswith('"query": "torn')  # the fragment alone on its line


def test_killed_writer_leaves_only_complete_lines(tmp_path):
    log = tmp_path / "baseline.jsonl"
    writer = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from test_data_baseline_log import result\n"
        "from locollm.runtime.query import append_log\n"
        f"for i in range(100000):\n    append_log({str(log)!r}, result(str(i), 'x' * 4000))\n")
    proc = subprocess.Popen([sys.executable, "-c", writer], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 20
    while (not log.exists() or log.stat().st_size < 200_000) and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    raw = log.read_bytes()
    assert len(raw) >= 200_000
    records = [json.loads(line) for line in raw.decode().splitlines() if line]
    assert [r["query"] for r in records] == [str(i) for i in range(len(records))]
    append_log(log, result("after the crash"))
    assert json.loads(log.read_text().splitlines()[-1])["query"] == "after the crash"
