"""Shared fixtures: isolated LOCOLLM_HOME, the tiny model, small datasets, the real base."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]

# The test modules that run llama.cpp inside the pytest process. A native crash there (an AMX
# or AVX-512 path this CPU faults on) would kill the whole run with no report, so when any of
# them is selected the run starts with the doctor's decode check in a child process and stops
# with its message if that fails. Deselect them with `-m "not llama_cpp"`.
LLAMA_CPP_MODULES = {
    "test_chat", "test_data_replay", "test_engine", "test_eval_runner", "test_export_merged",
    "test_router", "test_scheduler", "test_server", "test_serve_fuzz", "test_shipped_adapter",
    "test_spine",
}


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if item.module.__name__ in LLAMA_CPP_MODULES:
            item.add_marker(pytest.mark.llama_cpp)


def pytest_collection_finish(session) -> None:
    if not any(item.get_closest_marker("llama_cpp") for item in session.items):
        return
    from locollm.doctor import diagnose, run_probe

    env = dict(os.environ)
    cache = os.environ.get("LOCOLLM_TEST_CACHE")
    if cache:  # the child assembles the model where the tests will look for it
        import tempfile

        home = Path(tempfile.mkdtemp(prefix="locollm-probe-"))
        Path(cache).mkdir(parents=True, exist_ok=True)
        (home / "models").symlink_to(Path(cache), target_is_directory=True)
        env["LOCOLLM_HOME"] = str(home)
    probe = run_probe(env=env)
    if not probe.ok:
        pytest.exit(f"llama.cpp fails its decode check on this machine; the tests that load "
                    f"it would crash pytest.\n{diagnose(probe)}", returncode=3)


@pytest.fixture(scope="session")
def shared_models(tmp_path_factory) -> Path:
    """Model cache shared by the whole session: the 270M model is assembled and dequantized
    once. ``LOCOLLM_TEST_CACHE`` keeps it across runs."""
    cache = os.environ.get("LOCOLLM_TEST_CACHE")
    folder = Path(cache) if cache else tmp_path_factory.mktemp("models")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(autouse=True)
def locollm_home(tmp_path_factory, shared_models, monkeypatch) -> Path:
    """Every test gets its own empty LOCOLLM_HOME whose models/ is the shared cache."""
    home = tmp_path_factory.mktemp("home")
    (home / "models").symlink_to(shared_models, target_is_directory=True)
    monkeypatch.setenv("LOCOLLM_HOME", str(home))
    return home


@pytest.fixture
def real_base():
    """The embedded Gemma 3 270M (assembled into the shared cache on first use)."""
    from locollm.models import resolve

    return resolve("gemma-3-270m")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """Folder of a tiny random Gemma-3 (HF format)."""
    from tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write rows as JSONL (test helper)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def math_rows() -> list[dict]:
    """Forty small addition examples in the guide's format."""
    rows = []
    for a in range(10, 50):
        b = 7 + a % 9
        rows.append({"instruction": "Add the numbers.", "input": f"{a} + {b}",
                     "output": f"{a} + {b} = {a + b}\nThe answer is {a + b}."})
    return rows
