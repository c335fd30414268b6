"""The code scorer's sandbox: each limit is shown holding (timeout, memory, file size, network,
temporary directory, environment), and pass@1 against an item's tests."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from locollm.evaluate.benchmark import BenchItem
from locollm.evaluate.codeexec import SandboxConfig, code_score, namespace_prefix, run_python

ADD = "```python\ndef add(a, b):\n    return a + b\n```"
TESTS = "assert add(1, 2) == 3\nassert add(-1, 1) == 0"


def code_item(tests: str = TESTS, **kw) -> BenchItem:
    return BenchItem(1, [], "Write add(a, b).", tests=tests, evaluation_type="code", **kw)


def test_pass_at_1_against_the_items_tests():
    assert code_score(ADD, code_item()).correct
    wrong = code_score(ADD.replace("a + b", "a * b"), code_item())
    assert not wrong.correct and wrong.detail.startswith("failed: AssertionError")
    assert not code_score("def add(a, b) return", code_item()).correct  # a syntax error


def test_humaneval_style_check_function():
    tests = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    assert code_score(ADD, code_item(tests, entry_point="add")).correct
    assert not code_score(ADD.replace("+", "-"), code_item(tests, entry_point="add")).correct


def test_timeout_kills_an_endless_program():
    start = time.monotonic()
    result = run_python("while True:\n    pass\n", SandboxConfig(timeout_s=1.5))
    assert result.reason == "timeout" and not result.passed
    assert time.monotonic() - start < 10


def test_timeout_kills_the_children_too(tmp_path):
    marker = tmp_path / "late"
    program = (f"import os, time\nif os.fork() == 0:\n    time.sleep(3)\n"
               f"    open({str(marker)!r}, 'w').write('x')\nelse:\n    time.sleep(60)\n")
    # fork is refused by the guard; without it the process group still dies on timeout
    result = run_python(program, SandboxConfig(timeout_s=1, socket_guard=False,
                                               namespace=False))
    assert result.reason == "timeout"
    time.sleep(3.5)
    assert not marker.exists()


def test_memory_limit_holds():
    result = run_python("x = bytearray(2 * 1024 ** 3)\n", SandboxConfig(memory_mb=512))
    assert result.reason == "memory" and not result.passed
    assert run_python("x = bytearray(64 * 1024 ** 2)\n", SandboxConfig(memory_mb=512)).passed


def test_file_size_limit_holds():
    big = "open('big.bin', 'wb').write(b'x' * (32 << 20))\n"
    assert run_python(big, SandboxConfig(file_mb=8)).reason == "file size"
    assert run_python(big, SandboxConfig(file_mb=64)).passed


@pytest.fixture
def listener():
    """A real TCP server on loopback that the test process itself can reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []

    def serve():
        server.settimeout(10)
        try:
            conn, _ = server.accept()
            accepted.append(True)
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    server.close()


CONNECT = ("import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
           "print('connected')\n")


def test_network_is_blocked(listener):
    port, accepted = listener
    result = run_python(CONNECT.format(port=port))
    assert result.reason == "network" and "connected" not in result.output
    with socket.create_connection(("127.0.0.1", port), timeout=3):
        pass  # the same server answers the test process: the sandbox blocked the program
    time.sleep(0.2)
    assert accepted == [True]


def test_network_guard_alone_blocks_even_the_raw_socket_module(listener):
    port, _ = listener
    raw = ("import _socket\ns = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)\n"
           f"s.connect(('127.0.0.1', {port}))\nprint('connected')\n")
    result = run_python(raw, SandboxConfig(namespace=False))
    assert result.reason == "network" and "socket.connect is not allowed" in result.output
    spawn = "import subprocess\nsubprocess.run(['true'])\n"  # no way round it via a program
    assert "not allowed" in run_python(spawn, SandboxConfig(namespace=False)).output


@pytest.mark.skipif(namespace_prefix() is None, reason="no network namespace on this system")
def test_network_namespace_alone_blocks(listener):
    port, accepted = listener
    result = run_python(CONNECT.format(port=port), SandboxConfig(namespace=True,
                                                                 socket_guard=False))
    assert result.reason == "network" and "unreachable" in result.output
    assert accepted == []


def test_runs_in_a_fresh_temporary_directory_that_is_removed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    program = ("import os, json\nopen('left.txt', 'w').write('x')\n"
               "print(json.dumps([os.getcwd(), sorted(os.listdir()), os.environ['HOME'], "
               "os.environ['TMPDIR']]))\n")
    result = run_python(program)
    assert result.passed
    import json

    cwd, listing, home, tmp = json.loads(result.output)
    assert listing == ["left.txt", "program.py"] and home == tmp == cwd
    assert Path(cwd) != tmp_path and not Path(cwd).exists()  # deleted afterwards
    assert not (tmp_path / "left.txt").exists()


def test_the_parents_environment_does_not_leak(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    result = run_python("import os\nprint(sorted(os.environ))\n")
    assert result.passed and "OPENAI_API_KEY" not in result.output
    assert os.environ["OPENAI_API_KEY"] == "sk-secret"


def test_code_scorer_reports_a_limit_as_the_reason():
    hog = code_item("assert True")
    result = code_score("```python\nwhile True:\n    pass\n```", hog,
                        SandboxConfig(timeout_s=1))
    assert not result.correct and result.detail.startswith("timeout")
