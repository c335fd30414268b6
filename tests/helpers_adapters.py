"""Adapters for tests and benches without training: random LoRA GGUFs for the real base.

Training (even one step) needs the dequantized base, which takes over a minute to build; a LoRA
GGUF written straight from numpy arrays loads into llama.cpp in milliseconds and changes the
output like a trained one. ``make_adapter`` writes such a folder with its ``locollm.json``;
``make_guide_layout`` adds the files of the guide's Phase 5 layout, with eval results;
``make_adapters_root`` builds an ``adapters/`` folder with a registry, and ``serving`` runs the
real HTTP server over a runtime in a thread.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

# Gemma 3 270M: 18 blocks, hidden 640; attention projections (out, in).
GEMMA3_270M_LAYERS = 18
GEMMA3_270M_SHAPES = {"q_proj": (1024, 640), "k_proj": (256, 640), "v_proj": (256, 640),
                      "o_proj": (640, 1024)}


def lora_tensors(rank: int = 4, std: float = 0.05, seed: int = 0,
                 modules: tuple[str, ...] = ("q_proj", "v_proj"),
                 layers: int = GEMMA3_270M_LAYERS, zero: bool = False) -> dict[str, np.ndarray]:
    """PEFT-named ``lora_A`` / ``lora_B`` arrays for every layer; ``zero`` makes B all zeros."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(layers):
        for module in modules:
            out_dim, in_dim = GEMMA3_270M_SHAPES[module]
            key = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{key}.lora_A.weight"] = rng.normal(0, std, (rank, in_dim))
            b = np.zeros((out_dim, rank)) if zero else rng.normal(0, std, (out_dim, rank))
            tensors[f"{key}.lora_B.weight"] = b
    return tensors


def make_adapter(folder: Path, base, *, rank: int = 4, std: float = 0.05, seed: int = 0,
                 zero: bool = False, base_name: str = "gemma-3-270m",
                 modules: tuple[str, ...] = ("q_proj", "v_proj")) -> Path:
    """An adapter folder (``adapter.gguf`` + ``locollm.json``) for the resolved ``base``."""
    from locollm.adapter.meta import AdapterMeta, lora_gguf_path
    from locollm.export.lora_writer import write_lora_gguf
    from locollm.prompt import STOP_STRINGS

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_lora_gguf(lora_tensors(rank, std, seed, modules, zero=zero), lora_gguf_path(folder),
                    arch="gemma3", n_layers=GEMMA3_270M_LAYERS, alpha=2 * rank,
                    name=folder.name)
    AdapterMeta(name=folder.name, base_model=base_name, base_sha256=base.sha256,
                architecture="gemma3", lora_rank=rank, lora_alpha=2 * rank,
                target_modules=list(modules), stop=list(STOP_STRINGS),
                created="2026-03-01T10:00:00+00:00").save(folder)
    return folder


def write_result(path: Path, model: str, correct: int, total: int,
                 benchmark: Path | None = None) -> Path:
    """An eval result JSON as ``locollm eval`` writes it: ``total`` items of ``benchmark``
    (default: the folder's eval/benchmark.jsonl), the first ``correct`` of them right, with the
    benchmark's sha256 and the adapter's hashes."""
    return make_result(Path(path).parent, model, correct, total, benchmark).save(path)


def make_result(eval_dir: Path, model: str, correct: int, total: int,
                benchmark: Path | None = None):
    """The BenchResult :func:`write_result` writes, for an adapter's ``eval_dir``."""
    from locollm.evaluate.provenance import adapter_record
    from locollm.evaluate.results import ItemResult, build_result
    from locollm.paths import sha256_file

    bench = Path(benchmark) if benchmark else Path(eval_dir) / "benchmark.jsonl"
    folder = Path(eval_dir).parent
    meta = json.loads((folder / "locollm.json").read_text()) \
        if (folder / "locollm.json").exists() else {}
    items = [ItemResult(i + 1, "### Instruction:\nAdd.", "The answer is 5.",
                        "The answer is 5." if i < correct else "The answer is 4.", "numeric",
                        i < correct, float(i < correct), "5" if i < correct else "4", "5")
             for i in range(total)]
    adapter = adapter_record(model, folder) if model != "base" and meta else None
    base = {"name": meta.get("base_model", "gemma-3-270m"), "sha256": meta.get("base_sha256"),
            "quantization": "Q4_K_M", "precision": "gguf"}
    return build_result(model, bench, sha256_file(bench) if bench.exists() else None, items,
                        1.0, runtime="llama.cpp", base=base, adapter=adapter,
                        settings={"max_tokens": 128})


def write_benchmark(path: Path, n: int) -> Path:
    """A benchmark of ``n`` addition items."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"instruction": "Add the numbers.", "input": f"{i} + 3",
             "output": f"The answer is {i + 3}."} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def make_guide_layout(folder: Path, *, score: tuple[int, int] = (36, 50),
                      base_score: tuple[int, int] = (20, 50), ood: bool = True) -> Path:
    """Add the guide's Phase 5 files to an adapter folder (placeholders where content is moot)."""
    folder = Path(folder)
    (folder / "training").mkdir(parents=True, exist_ok=True)
    (folder / "eval").mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 4, "lora_alpha": 8}))
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 2_000_000)
    row = {"instruction": "Add the numbers.", "input": "2 + 3", "output": "The answer is 5."}
    (folder / "training" / "dataset.jsonl").write_text(json.dumps(row) + "\n")
    (folder / "training" / "train_config.yaml").write_text("lora_rank: 4\n")
    (folder / "training" / "TRAINING_LOG.md").write_text("# Training log\n")
    write_benchmark(folder / "eval" / "benchmark.jsonl", score[1])
    write_result(folder / "eval" / "results.json", folder.name, *score)
    write_result(folder / "eval" / "base_results.json", "base", *base_score)
    if ood:  # as `locollm eval --adapter DOMAIN` writes it with an eval/ood.jsonl
        from locollm.evaluate.results import OodResult

        bench = write_benchmark(folder / "eval" / "ood.jsonl", 10)
        OodResult(make_result(folder / "eval", "base", 9, 10, bench),
                  make_result(folder / "eval", folder.name, 8, 10, bench)).save(
            folder / "eval" / "ood_results.json")
    return folder


def full_entry(**overrides):
    """A complete, valid registry entry (the guide's example numbers)."""
    from locollm.adapter.registry import RegistryEntry

    values = {"version": "1.0.0", "base_model": "gemma-3-270m", "quantization": "Q4_K_M",
              "lora_rank": 4, "created": "2026-S2", "authors": ["Team Pi, ISYS6020"],
              "benchmark_score": 0.72, "base_model_score": 0.41,
              "improvement": "+31.0 pts (+75.6%)",
              "description": "Arithmetic word problems", "tags": ["math"], "size_mb": 2.0,
              "router_keywords": ["add", "how many", "sum"]}
    return RegistryEntry(**(values | overrides))


def make_adapters_root(root: Path, base) -> Path:
    """An ``adapters/`` folder: ``math`` (a LoRA that changes the output, keywords "add",
    "how many", "sum"), ``zero`` (a LoRA with B = 0: output identical to the base, keyword
    "zero") and their registry."""
    from locollm.adapter.registry import registry_path, write_entry

    make_adapter(root / "math", base, std=0.08, seed=1)
    make_adapter(root / "zero", base, zero=True)
    write_entry(registry_path(root), "math", full_entry())
    write_entry(registry_path(root), "zero", full_entry(router_keywords=["zero"], tags=[]))
    return root


@contextlib.contextmanager
def locollm_env(folder: Path, shared_models: Path) -> Iterator[Path]:
    """LOCOLLM_HOME for fixtures wider than one test (the autouse one is per test)."""
    import pytest

    home = folder / "home"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():
        (home / "models").symlink_to(shared_models, target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOCOLLM_HOME", str(home))
        yield home


@contextlib.contextmanager
def adapters_runtime(folder: Path, shared_models: Path, **options) -> Iterator:
    """A runtime over :func:`make_adapters_root` in ``folder`` (for module-wide fixtures);
    ``options`` go to ``open_runtime``."""
    from locollm.models import resolve
    from locollm.runtime.session import open_runtime

    with locollm_env(folder, shared_models):
        root = make_adapters_root(folder / "adapters", resolve("gemma-3-270m"))
        runtime = open_runtime(None, adapters_root=root, **options)
    try:
        yield runtime
    finally:
        runtime.close()


@contextlib.contextmanager
def serving(runtime, keep_runtime: bool = False, **config) -> Iterator:
    """The real HTTP server (uvicorn) on 127.0.0.1, a free port, in a thread; yields the
    server. ``config`` are :class:`~locollm.runtime.server.ServeConfig` fields; the runtime
    is closed with the server unless ``keep_runtime``."""
    from locollm.runtime.server import ServeConfig, make_server

    server = make_server(runtime, config=ServeConfig(**({"host": "127.0.0.1", "port": 0}
                                                        | config)))
    server.service.owns_runtime = not keep_runtime
    server.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close(close_runtime=not keep_runtime)
