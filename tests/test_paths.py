"""Atomic writes: a failure mid-write leaves the previous file or folder intact."""

from __future__ import annotations

import pytest

from locollm.paths import atomic_dir, atomic_path, atomic_write


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "a.json"
    atomic_write(target, "old")
    atomic_write(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_failed_write_keeps_previous_state(tmp_path):
    target = tmp_path / "a.json"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_dir_swaps_only_on_success(tmp_path):
    dest = tmp_path / "adapter"
    with atomic_dir(dest) as tmp:
        (tmp / "w").write_text("v1")
    with pytest.raises(RuntimeError), atomic_dir(dest) as tmp:
        (tmp / "w").write_text("v2-partial")
        raise RuntimeError("killed")
    assert (dest / "w").read_text() == "v1"
    with atomic_dir(dest) as tmp:
        (tmp / "w").write_text("v2")
    assert (dest / "w").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]
