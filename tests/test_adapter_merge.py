"""``locollm merge``: PEFT's add_weighted_adapter on real adapters, checked number by number.

Two adapters of the tiny model are trained for a few real PEFT steps (different ranks and
targets); the merged folder's weights are compared with what each method must produce. The
export check uses the embedded Gemma 3 270M, whose base GGUF llama.cpp loads: two PEFT
adapters with random LoRA weights are merged, exported to a LoRA GGUF and verified against
PEFT in llama.cpp.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import write_jsonl

from locollm.adapter.merge import METHODS, MergeConfig, merge_adapters
from locollm.adapter.meta import load_meta
from locollm.cli import cli
from locollm.cli.merge import METHOD_NAMES
from locollm.config import TrainConfig
from locollm.errors import AdapterError, ConfigError
from locollm.train import train


@pytest.fixture(scope="module")
def sources(tiny_model, tmp_path_factory) -> dict[str, Path]:
    """Adapters of the tiny model after 3 real steps: a (r4, q/v), b (r8, q/o), c (r4, q/v)."""
    root = tmp_path_factory.mktemp("merge")
    rows = [{"instruction": "Add the numbers.", "input": f"{a} + {b}",
             "output": f"The answer is {a + b}."} for a in range(10, 30) for b in (3, 5)]
    data = write_jsonl(root / "data.jsonl", rows)
    specs = {"a": (4, ["q_proj", "v_proj"], 1), "b": (8, ["q_proj", "o_proj"], 2),
             "c": (4, ["q_proj", "v_proj"], 3)}
    out = {}
    for name, (rank, targets, seed) in specs.items():
        cfg = TrainConfig(base_model=str(tiny_model), dataset=str(data),
                          output=str(root / name), lora_rank=rank, target_modules=targets,
                          max_steps=3, batch_size=4, lr=1e-2, eval_fraction=0, save_every=0,
                          seed=seed, threads=1)
        out[name] = train(cfg).output
        bench = out[name] / "eval" / "benchmark.jsonl"
        write_jsonl(bench, rows[seed:seed + 2])
    return out


def _tensors(folder: Path):
    from safetensors.torch import load_file

    config = json.loads((folder / "adapter_config.json").read_text())
    return load_file(str(folder / "adapter_model.safetensors")), \
        config["lora_alpha"] / config["r"]


def _deltas(folder: Path) -> dict:
    """scale x B @ A per adapted module: the update the adapter adds to the base weight."""
    weights, scale = _tensors(folder)
    return {k.replace(".lora_A.weight", ""): scale * weights[k.replace("lora_A", "lora_B")]
            @ weights[k] for k in weights if "lora_A" in k}


def _weighted_sum(parts: list[tuple[float, Path]]) -> dict:
    total: dict = {}
    for weight, folder in parts:
        for key, delta in _deltas(folder).items():
            total[key] = total.get(key, 0) + weight * delta
    return total


def test_cat_is_exactly_the_weighted_sum_of_the_updates(sources, tmp_path):
    import torch

    out = tmp_path / "ab"
    result = merge_adapters(MergeConfig([sources["a"], sources["b"]], out, [0.5, 2.0]))
    want = _weighted_sum([(0.5, sources["a"]), (2.0, sources["b"])])
    got = _deltas(out)
    assert got.keys() == want.keys()  # the union of the targets: q, v and o
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-7, msg=key)
    assert any(float(d.abs().max()) > 1e-4 for d in want.values())
    meta = load_meta(out)
    assert (meta.lora_rank, meta.lora_alpha) == (12, 12) == (result.meta.lora_rank, 12)
    assert meta.target_modules == ["o_proj", "q_proj", "v_proj"]
    first = load_meta(sources["a"])
    assert (meta.base_model, meta.prompt_format, meta.architecture) == \
        (first.base_model, first.prompt_format, first.architecture)
    assert meta.backend == "merge" and meta.name == "ab"
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == json.loads(
        (sources["a"] / "adapter_config.json").read_text())["base_model_name_or_path"]


def test_the_merged_folder_loads_in_peft_and_changes_the_model(sources, tiny_model, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "ab"
    merge_adapters(MergeConfig([sources["a"], sources["b"]], out, [1.0, 1.0]))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), out)
    ids = torch.tensor([[2, 5, 9, 14, 20]])
    with torch.no_grad():
        merged = model(ids).logits
        with model.disable_adapter():
            bare = model(ids).logits
    assert float((merged - bare).abs().max()) > 1e-5


def test_linear_is_peft_weighted_sum_of_a_and_b_separately(sources, tmp_path):
    import torch

    out = tmp_path / "ac"
    merge_adapters(MergeConfig([sources["a"], sources["c"]], out, [0.5, -0.25],
                               method="linear"))
    got, scale = _tensors(out)
    assert scale == 1.0 and load_meta(out).lora_rank == 4
    srcs = [(_tensors(sources[n]), w) for n, w in (("a", 0.5), ("c", -0.25))]
    for key in got:
        want = 0
        for (weights, s), w in srcs:
            # PEFT: sqrt(|w x scale|) on both sides, the sign on A alone
            factor = math.sqrt(abs(w * s)) * (math.copysign(1, w) if "lora_A" in key else 1)
            want = want + factor * weights[key]
        torch.testing.assert_close(got[key], want, rtol=1e-5, atol=1e-7, msg=key)


def test_svd_is_the_weighted_sum_truncated_to_the_largest_rank(sources, tmp_path):
    import torch

    out = tmp_path / "ab-svd"
    merge_adapters(MergeConfig([sources["a"], sources["b"]], out, [1.0, 1.0], method="svd"))
    assert load_meta(out).lora_rank == 8
    want = _weighted_sum([(1.0, sources["a"]), (1.0, sources["b"])])
    got = _deltas(out)
    for key, delta in want.items():
        u, s, vh = torch.linalg.svd(delta)
        best = u[:, :8] @ torch.diag(s[:8]) @ vh[:8]
        torch.testing.assert_close(got[key], best, rtol=1e-4, atol=1e-6, msg=key)


def test_dare_is_reproducible_by_seed_and_ties_prunes(sources, tmp_path):
    def weights(name, **kw):
        merge_adapters(MergeConfig([sources["a"], sources["c"]], tmp_path / name, **kw))
        return _tensors(tmp_path / name)[0]

    one = weights("d1", method="dare", density=0.5, seed=1)
    same = weights("d2", method="dare", density=0.5, seed=1)
    other = weights("d3", method="dare", density=0.5, seed=2)
    assert all(bool((one[k] == same[k]).all()) for k in one)
    assert any(not bool((one[k] == other[k]).all()) for k in one)
    ties = weights("t", method="ties", density=0.2)
    lora_a = [t for k, t in ties.items() if "lora_A" in k]
    zeros = sum(int((t == 0).sum()) for t in lora_a) / sum(t.numel() for t in lora_a)
    assert zeros > 0.5  # density 0.2: most values pruned
    note = yaml.safe_load((tmp_path / "d1" / "training" / "merge.yaml").read_text())
    assert (note["peft_combination_type"], note["density"], note["seed"]) == \
        ("dare_linear", 0.5, 1)


def test_provenance_notes_name_the_sources(sources, tmp_path):
    from locollm.paths import sha256_file

    out = tmp_path / "ab"
    merge_adapters(MergeConfig([sources["a"], sources["b"]], out, [0.5, 0.5]))
    note = yaml.safe_load((out / "training" / "merge.yaml").read_text())
    assert [s["name"] for s in note["sources"]] == ["a", "b"]
    assert [s["weight"] for s in note["sources"]] == [0.5, 0.5]
    assert note["sources"][1]["adapter_model_sha256"] == \
        sha256_file(sources["b"] / "adapter_model.safetensors")
    assert note["command"].startswith("locollm merge ") and "--weights 0.5,0.5" in \
        note["command"]
    log = (out / "training" / "TRAINING_LOG.md").read_text()
    assert "Merged" in log and "| a | 0.5 | 4 |" in log and "| b | 0.5 | 8 |" in log
    lines = lambda p: p.read_text().splitlines()  # noqa: E731
    assert lines(out / "training" / "dataset.jsonl") == \
        lines(sources["a"] / "training" / "dataset.jsonl") + \
        lines(sources["b"] / "training" / "dataset.jsonl")
    assert lines(out / "eval" / "benchmark.jsonl") == \
        lines(sources["a"] / "eval" / "benchmark.jsonl") + \
        lines(sources["b"] / "eval" / "benchmark.jsonl")


def _copy_with_meta(src: Path, dest: Path, **changes) -> Path:
    shutil.copytree(src, dest)
    meta = json.loads((dest / "locollm.json").read_text())
    (dest / "locollm.json").write_text(json.dumps(meta | changes))
    return dest


def test_adapters_of_another_base_or_prompt_format_are_refused_with_every_reason(
        sources, tmp_path):
    other_base = _copy_with_meta(sources["c"], tmp_path / "qwen", base_model="Qwen/Qwen2.5-3B",
                                 base_sha256="f" * 64)
    other_format = _copy_with_meta(sources["b"], tmp_path / "chat", prompt_format="chat")
    with pytest.raises(AdapterError) as err:
        merge_adapters(MergeConfig([sources["a"], other_base, other_format], tmp_path / "x"))
    text = err.value.render()
    assert "Qwen/Qwen2.5-3B" in text and str(other_base / "locollm.json") in text
    assert "prompt format 'chat'" in text and str(other_format / "locollm.json") in text
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("method", ["linear", "ties", "dare"])
def test_methods_that_need_equal_ranks_say_which_to_use(sources, tmp_path, method):
    with pytest.raises(AdapterError, match="needs equal ranks") as err:
        merge_adapters(MergeConfig([sources["a"], sources["b"]], tmp_path / "x",
                                   method=method))
    assert "--method cat" in err.value.problem.fix


@pytest.mark.parametrize("change, words", [
    ({"weights": [1.0]}, "1 weight(s) for 2 adapters"),
    ({"weights": [1.0, 0.0]}, "must be a non-zero number"),
    ({"method": "ties", "density": 0.0}, "density 0.0"),
    ({"method": "average"}, "unknown merge method"),
])
def test_bad_options_are_one_clear_message(sources, tmp_path, change, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        merge_adapters(MergeConfig([sources["a"], sources["c"]], tmp_path / "x", **change))


def test_output_is_never_a_source_nor_overwritten_without_force(sources, tmp_path):
    with pytest.raises(ConfigError, match="one of the adapters"):
        merge_adapters(MergeConfig([sources["a"], sources["c"]], sources["a"]))
    out = tmp_path / "ac"
    merge_adapters(MergeConfig([sources["a"], sources["c"]], out))
    before = (out / "adapter_model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="already holds an adapter"):
        merge_adapters(MergeConfig([sources["a"], sources["c"]], out, [2.0, 1.0]))
    assert (out / "adapter_model.safetensors").read_bytes() == before
    merge_adapters(MergeConfig([sources["a"], sources["c"]], out, [2.0, 1.0], force=True))
    assert (out / "adapter_model.safetensors").read_bytes() != before


def test_a_folder_that_is_not_an_adapter_is_named(sources, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AdapterError, match="not a locollm adapter folder") as err:
        merge_adapters(MergeConfig([sources["a"], empty], tmp_path / "x"))
    assert err.value.problem.file == empty


def test_cli_merges_and_reports(sources, tmp_path):
    assert set(METHOD_NAMES) == set(METHODS)
    out = tmp_path / "cli"
    result = CliRunner().invoke(cli, ["merge", str(sources["a"]), str(sources["b"]),
                                      "--weights", "0.5,0.5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "rank 12" in result.output and f"locollm export {out}" in result.output
    bad = CliRunner().invoke(cli, ["merge", str(sources["a"]), str(sources["b"]),
                                   "--weights", "half,half", "-o", str(tmp_path / "y")])
    assert bad.exit_code == 2 and "comma-separated" in bad.output
    refused = CliRunner().invoke(cli, ["merge", str(sources["a"]), str(sources["b"]),
                                       "--method", "linear", "-o", str(tmp_path / "z")])
    assert refused.exit_code == 2 and "needs equal ranks" in refused.output
    assert "Traceback" not in refused.output


def _peft_adapter(folder: Path, base, seed: int, rank: int, modules: tuple[str, ...]) -> Path:
    """A PEFT adapter folder with random LoRA weights for the embedded 270M model."""
    import numpy as np
    from helpers_adapters import lora_tensors
    from peft import LoraConfig
    from safetensors.numpy import save_file

    from locollm.adapter.meta import AdapterMeta
    from locollm.prompt import STOP_STRINGS

    folder.mkdir(parents=True)
    tensors = lora_tensors(rank, std=0.04, seed=seed, modules=modules)
    save_file({k: v.astype(np.float32) for k, v in tensors.items()},
              str(folder / "adapter_model.safetensors"))
    LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(modules),
               task_type="CAUSAL_LM", base_model_name_or_path="gemma-3-270m"
               ).save_pretrained(str(folder))
    AdapterMeta(name=folder.name, base_model="gemma-3-270m", base_sha256=base.sha256,
                architecture="gemma3", lora_rank=rank, lora_alpha=2 * rank,
                target_modules=list(modules), stop=list(STOP_STRINGS)).save(folder)
    return folder


@pytest.mark.slow
def test_a_merged_adapter_exports_to_a_lora_gguf_that_llama_cpp_follows(real_base, tmp_path):
    from locollm.export.lora import export_lora_gguf
    from locollm.export.verify import verify_export
    from locollm.gguf.names import read_info

    a = _peft_adapter(tmp_path / "a", real_base, 1, 4, ("q_proj", "v_proj"))
    b = _peft_adapter(tmp_path / "b", real_base, 2, 8, ("q_proj", "o_proj"))
    out = tmp_path / "ab"
    merge_adapters(MergeConfig([a, b], out, [0.5, 0.5]))
    gguf = export_lora_gguf(out)
    info = read_info(gguf)
    assert info.architecture == "gemma3"
    report = verify_export(out)  # llama.cpp + the merged LoRA GGUF against PEFT
    # the change the merged LoRA makes in llama.cpp is the change PEFT computes
    assert report.passed and report.delta_correlation > 0.95, report
