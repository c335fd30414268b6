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
