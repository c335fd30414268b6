"""Merge LoRA adapters with each other into a new adapter folder (``locollm merge A B -o C``).

The arithmetic is PEFT's ``add_weighted_adapter``; this module checks that the adapters can be
merged at all (same base, same prompt format, ranks the method accepts), runs it, and writes a
normal adapter folder: PEFT files, ``locollm.json`` with the merged rank, alpha and targets,
and ``training/``/``eval/`` notes of where it came from. Export, eval and serving then treat it
like a trained adapter.

PEFT needs a model to hang the adapters on, but never reads the base weights for a merge: the
base is built from its ``config.json`` with uninitialised (never touched, so never resident)
weights, so merging adapters of a 3B base takes seconds and little memory.

Methods (PEFT's ``combination_type``): ``cat`` (default) stacks the adapters, rank = sum of the
ranks, and is exactly the weighted sum of their weight updates; ``svd`` is that sum truncated
to the largest source rank; ``linear`` takes the weighted sum of the A and B matrices
separately, same rank required, which PEFT itself calls a rough approximation (the update has
cross terms); ``ties`` and ``dare`` (PEFT's ``dare_linear``) prune each adapter's A and B to
``density`` before combining them, same rank required.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import AdapterError, ConfigError, Problem
from ..paths import atomic_dir, sha256_file
from .meta import METADATA, PEFT_FILES, AdapterMeta, load_meta

# our method name -> PEFT's combination_type
METHODS = {"cat": "cat", "svd": "svd", "linear": "linear", "ties": "ties",
           "dare": "dare_linear"}
SAME_RANK = frozenset({"linear", "ties", "dare"})  # PEFT refuses differing ranks for these
PRUNED = frozenset({"ties", "dare"})  # take a density
MERGE_NOTE = "merge.yaml"


@dataclass
class MergeConfig:
    """What ``locollm merge`` was asked to do."""

    # Source adapter folders, two or more, all trained on the same base.
    adapters: list[Path]
    # The adapter folder to write.
    output: Path
    # One weight per source: its update is scaled by it (default 1 each: every adapter's full
    # effect, as if all were applied at scale 1; 0.5,0.5 averages two).
    weights: list[float] | None = None
    # cat, svd, linear, ties or dare (see the module docstring).
    method: str = "cat"
    # ties / dare: the share of each adapter's values kept, in (0, 1].
    density: float = 0.5
    # dare drops values at random: the seed makes the merge reproducible.
    seed: int = 0
    # Replace an existing adapter folder at ``output``.
    force: bool = False


@dataclass
class Source:
    """One adapter going into the merge."""

    folder: Path
    meta: AdapterMeta
    peft_config: dict
    weight: float
    sha256: str = ""  # of its adapter_model.safetensors


@dataclass
class MergeResult:
    """The merged folder and what it is made of."""

    output: Path
    meta: AdapterMeta
    method: str
    sources: list[Source] = field(default_factory=list)


def _read_source(folder: Path, weight: float, problems: list[Problem]) -> Source | None:
    try:
        meta = load_meta(folder)
    except AdapterError as exc:
        problems.append(exc.problem)
        return None
    missing = [name for name in PEFT_FILES if not (folder / name).exists()]
    if missing:
        problems.append(Problem(f"{', '.join(missing)} missing: no PEFT weights to merge",
                                folder, fix=f"train it again: locollm train --output {folder}"))
        return None
    config = json.loads((folder / PEFT_FILES[0]).read_text(encoding="utf-8"))
    unsupported = [key for key in ("use_dora", "use_rslora") if config.get(key)]
    if config.get("peft_type", "LORA") != "LORA" or unsupported:
        what = ", ".join(unsupported) or config.get("peft_type")
        problems.append(Problem(f"a {what} adapter: PEFT's weighted merge takes plain LoRA "
                                "adapters only", folder / PEFT_FILES[0],
                                fix="merge LoRA adapters trained by locollm train"))
        return None
    return Source(folder, meta, config, weight)


def _weights(cfg: MergeConfig) -> list[float]:
    weights = cfg.weights if cfg.weights is not None else [1.0] * len(cfg.adapters)
    if len(weights) != len(cfg.adapters):
        raise ConfigError(f"{len(weights)} weight(s) for {len(cfg.adapters)} adapters",
                          fix="give one weight per adapter, e.g. --weights 0.5,0.5")
    bad = [w for w in weights if not math.isfinite(w) or w == 0]
    if bad:
        raise ConfigError(f"weight {bad[0]!r} must be a non-zero number",
                          fix="drop an adapter from the merge instead of weighting it 0")
    return list(weights)


def _check_options(cfg: MergeConfig) -> None:
    if cfg.method not in METHODS:
        raise ConfigError(f"unknown merge method {cfg.method!r}",
                          fix=f"use one of {', '.join(METHODS)}")
    if len(cfg.adapters) < 2:
        raise ConfigError("merging needs two adapters or more",
                          fix="locollm merge ADAPTER_A ADAPTER_B -o OUTPUT")
    if cfg.method in PRUNED and not 0 < cfg.density <= 1:
        raise ConfigError(f"density {cfg.density} must be in (0, 1]",
                          fix="e.g. --density 0.5 keeps half of each adapter's values")
    out = Path(cfg.output).resolve()
    for folder in cfg.adapters:
        if Path(folder).resolve() == out:
            raise ConfigError("the output is one of the adapters being merged", file=folder,
                              fix="write the merge to a new folder with -o")
    if Path(cfg.output).exists() and not Path(cfg.output).is_dir():
        raise ConfigError("the output is a file, not a folder", file=cfg.output)
    if Path(cfg.output).is_dir() and any(Path(cfg.output).iterdir()) and not cfg.force:
        what = "an adapter" if (Path(cfg.output) / METADATA).exists() else "files"
        raise ConfigError(f"the output already holds {what}", file=cfg.output,
                          fix="pick a new folder, or pass --force to replace it")


def check_mergeable(cfg: MergeConfig) -> list[Source]:
    """Every reason the adapters cannot be merged, collected, before any weights load.

    Raises:
        ConfigError: for bad options (method, weights, density, output).
        AdapterError: naming each folder that is not an adapter, or whose base, architecture,
            prompt format or rank does not fit the first one.
    """
    _check_options(cfg)
    problems: list[Problem] = []
    sources = [s for folder, w in zip(cfg.adapters, _weights(cfg), strict=True)
               if (s := _read_source(Path(folder), w, problems)) is not None]
    if sources:
        first = sources[0]
        for other in sources[1:]:
            problems += _mismatches(first, other, cfg.method)
    if problems:
        raise AdapterError(f"cannot merge these adapters: {problems[0].message}",
                           file=problems[0].file, fix=problems[0].fix, problems=problems[1:])
    return sources


def _mismatches(first: Source, other: Source, method: str) -> list[Problem]:
    a, b = first.meta, other.meta
    found = []
    if a.base_model != b.base_model or (a.base_sha256 and b.base_sha256 and
                                        a.base_sha256 != b.base_sha256):
        found.append(Problem(f"trained on base {b.base_model!r} (sha256 "
                             f"{(b.base_sha256 or '?')[:12]}), {first.folder.name} on "
                             f"{a.base_model!r} (sha256 {(a.base_sha256 or '?')[:12]})",
                             other.folder / METADATA,
                             fix="merge only adapters trained on the same base model"))
    elif a.architecture != b.architecture:
        found.append(Problem(f"architecture {b.architecture!r}, {first.folder.name} has "
                             f"{a.architecture!r}", other.folder / METADATA,
                             fix="merge only adapters of the same base model"))
    if a.prompt_format != b.prompt_format:
        found.append(Problem(f"prompt format {b.prompt_format!r}, {first.folder.name} was "
                             f"trained with {a.prompt_format!r}: one prompt cannot serve both",
                             other.folder / METADATA,
                             fix="retrain one of them with the other's prompt format"))
    if method in SAME_RANK and a.lora_rank != b.lora_rank:
        found.append(Problem(f"rank {b.lora_rank}, {first.folder.name} has rank "
                             f"{a.lora_rank}: --method {method} needs equal ranks",
                             other.folder / METADATA,
                             fix="use --method cat (exact, rank = sum) or --method svd"))
    return found


def _skeleton(model_dir: Path):
    """The base model's modules with uninitialised weights: all PEFT needs to merge LoRAs.

    The weights are never read, and memory that is never touched is never made resident.
    float32, because PEFT creates the merged LoRA matrices in the base layer's dtype.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model.to_empty(device="cpu")


def _peft_merge(sources: list[Source], cfg: MergeConfig, stage: Path) -> dict:
    """Run PEFT's add_weighted_adapter and save the result into ``stage``; returns its
    adapter_config.json."""
    import torch
    from peft import PeftModel

    from ..models import resolve, training_dir

    model_dir = training_dir(resolve(sources[0].meta.base_model))
    names = [f"source{i}" for i in range(len(sources))]
    model = PeftModel.from_pretrained(_skeleton(model_dir), str(sources[0].folder),
                                      adapter_name=names[0])
    for name, source in zip(names[1:], sources[1:], strict=True):
        model.load_adapter(str(source.folder), adapter_name=name)
    torch.manual_seed(cfg.seed)  # dare's random drop
    options = {"density": cfg.density} if cfg.method in PRUNED else {}
    try:
        model.add_weighted_adapter(names, [s.weight for s in sources], "default",
                                   combination_type=METHODS[cfg.method], **options)
    except ValueError as exc:  # PEFT's own checks (e.g. modules_to_save on both)
        raise AdapterError(f"PEFT cannot merge these adapters: {exc}",
                           file=sources[0].folder) from exc
    model.set_adapter("default")
    for name in names:
        model.delete_adapter(name)
    model.save_pretrained(str(stage / "peft"), selected_adapters=["default"])
    for name in PEFT_FILES:
        (stage / "peft" / name).replace(stage / name)
    shutil.rmtree(stage / "peft")
    return json.loads((stage / PEFT_FILES[0]).read_text(encoding="utf-8"))


def _concat_jsonl(parts: list[Path], dest: Path) -> bool:
    """Concatenate the sources' JSONL files (each line kept as it is); False if any lacks one."""
    if not parts or not all(p.exists() for p in parts):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", encoding="utf-8") as out:
        for part in parts:
            text = part.read_text(encoding="utf-8")
            out.write(text if text.endswith("\n") or not text else text + "\n")
    return True


def _score(folder: Path, name: str) -> str:
    from .register import read_score

    try:
        return f"{read_score(folder / 'eval' / name, folder.name):.1%}"
    except AdapterError:
        return "not evaluated"


def _write_notes(stage: Path, sources: list[Source], cfg: MergeConfig, meta: AdapterMeta,
                 created: str) -> None:
    """training/ (merge.yaml, TRAINING_LOG.md, the sources' data) and eval/ (the sources'
    benchmarks and what they scored): where the merged adapter came from."""
    training, evald = stage / "training", stage / "eval"
    training.mkdir()
    evald.mkdir()
    note = {
        "merged": created, "method": cfg.method, "peft_combination_type": METHODS[cfg.method],
        **({"density": cfg.density, "seed": cfg.seed} if cfg.method in PRUNED else {}),
        "result": {"lora_rank": meta.lora_rank, "lora_alpha": meta.lora_alpha,
                   "target_modules": meta.target_modules},
        "sources": [{"name": s.meta.name, "folder": str(s.folder), "weight": s.weight,
                     "lora_rank": s.meta.lora_rank, "lora_alpha": s.meta.lora_alpha,
                     "adapter_model_sha256": s.sha256} for s in sources],
        "command": "locollm merge " + " ".join(str(s.folder) for s in sources)
                   + f" --weights {','.join(f'{s.weight:g}' for s in sources)}"
                   + f" --method {cfg.method}"
                   + (f" --density {cfg.density:g} --seed {cfg.seed}"
                      if cfg.method in PRUNED else "") + f" -o {cfg.output}",
    }
    (training / MERGE_NOTE).write_text(
        "# How this adapter was made: merged from other adapters, not trained.\n"
        + yaml.safe_dump(note, sort_keys=False), encoding="utf-8")
    has_data = _concat_jsonl([s.folder / "training" / "dataset.jsonl" for s in sources],
                             training / "dataset.jsonl")
    has_bench = _concat_jsonl([s.folder / "eval" / "benchmark.jsonl" for s in sources],
                              evald / "benchmark.jsonl")
    rows = [f"| {s.meta.name} | {s.weight:g} | {s.meta.lora_rank} | "
            f"{_score(s.folder, 'results.json')} | {_score(s.folder, 'base_results.json')} |"
            for s in sources]
    log = [f"# Training log: {meta.name}", "", f"## Merged {created}", "",
           f"Not trained: merged from {len(sources)} adapters with PEFT's add_weighted_adapter "
           f"(method {cfg.method}, combination_type {METHODS[cfg.method]}); exact recipe in "
           f"[{MERGE_NOTE}]({MERGE_NOTE}).", "",
           "| source | weight | rank | its benchmark score | base score |",
           "| --- | --- | --- | --- | --- |", *rows, "",
           f"- Result: rank {meta.lora_rank}, alpha {meta.lora_alpha}, "
           f"targets {', '.join(meta.target_modules)}",
           "- Training data: " + ("the sources' training/dataset.jsonl, concatenated"
                                  if has_data else "not every source has one"),
           "- Benchmark: " + ("eval/benchmark.jsonl is the sources' benchmarks, concatenated"
                              if has_bench else "not every source has one"),
           "- The scores above are the sources' own; measure this adapter before shipping it: "
           f"`locollm eval --adapter {cfg.output}`", ""]
    (training / "TRAINING_LOG.md").write_text("\n".join(log), encoding="utf-8")


def merge_adapters(cfg: MergeConfig) -> MergeResult:
    """Merge ``cfg.adapters`` into a new adapter folder at ``cfg.output``.

    The folder is built under a temporary name and renamed into place complete.

    Raises:
        ConfigError: bad options. AdapterError: adapters that cannot be merged (all reasons).
    """
    sources = check_mergeable(cfg)
    for source in sources:
        source.sha256 = sha256_file(source.folder / PEFT_FILES[1])
    first = sources[0].meta
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    out = Path(cfg.output)
    stops = list(dict.fromkeys(s for src in sources for s in src.meta.stop))
    with atomic_dir(out) as stage:
        config = _peft_merge(sources, cfg, stage)
        meta = AdapterMeta(
            name=out.resolve().name, base_model=first.base_model,
            base_sha256=first.base_sha256, architecture=first.architecture,
            lora_rank=int(config["r"]), lora_alpha=int(config["lora_alpha"]),
            target_modules=sorted(config["target_modules"]), prompt_format=first.prompt_format,
            stop=stops, backend="merge", created=created)
        _write_notes(stage, sources, cfg, meta, created[:16].replace("T", " ") + " UTC")
        meta.save(stage)
    return MergeResult(out, meta, cfg.method, sources)
