"""``train(cfg)``: check the inputs, train with the chosen backend, write the adapter folder.

Everything that can be wrong with the input (config values, the dataset's schema, the base
model, an example longer than ``max_seq_len``, a ``--resume`` that does not match) is found by
:func:`prepare` before any model weights are loaded. Both backends hand back a PEFT model and a
:class:`~.monitor.History`; :func:`write_outputs` turns them into the same adapter folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..adapter.meta import METADATA, PEFT_FILES, AdapterMeta, lora_gguf_path
from ..config import TrainConfig
from ..data.jsonl import Example, load_examples
from ..errors import ConfigError, LocollmError
from ..models import BaseModel, portable_name, resolve, training_dir
from ..paths import sha256_file
from ..prompt import PromptFormat, format_for_tokenizer
from . import checkpoint, distributed
from .diagnosis import Diagnosis, diagnose, log_section
from .distributed import DistContext
from .monitor import History
from .tokens import TokenizedExample

LOSS_PLOT = "loss.png"
TRAINING_LOG = "TRAINING_LOG.md"


@dataclass
class TrainResult:
    """Where the adapter went and what the run measured."""

    output: Path
    history: History
    n_train: int
    n_eval: int
    backend: str
    device: str
    diagnosis: Diagnosis | None = None
    resumed_from: int | None = None
    # False on the other ranks of a data-parallel run: rank 0 wrote the folder and reports it.
    main: bool = True


@dataclass
class Prepared:
    """A run whose inputs have all been checked; no model weights loaded yet."""

    cfg: TrainConfig
    dataset: Path
    dataset_sha256: str
    base: BaseModel
    model_dir: Path
    tokenizer: object
    fmt: PromptFormat
    backend: str
    train_examples: list[Example]
    eval_examples: list[Example]
    train_items: list[TokenizedExample]
    eval_items: list[TokenizedExample]
    fingerprint: dict = field(default_factory=dict)

    @property
    def pad_id(self) -> int:
        """Token id used for padding (Gemma's is 0)."""
        pad = getattr(self.tokenizer, "pad_token_id", None)
        return pad if pad is not None else 0


def choose_backend(cfg: TrainConfig) -> str:
    """unsloth when asked for, or on auto when CUDA and the gpu extra are present; else peft."""
    import importlib.util

    if cfg.backend == "peft":
        return "peft"
    has_unsloth = importlib.util.find_spec("unsloth") is not None
    if cfg.backend == "unsloth":
        if not has_unsloth:
            raise ConfigError("--backend unsloth needs the gpu extra",
                              fix='pip install "locollm[gpu]" on a CUDA machine, or use '
                                  "--backend peft")
        return "unsloth"
    if not has_unsloth:
        return "peft"
    import torch

    return "unsloth" if torch.cuda.is_available() else "peft"


def split_heldout(items: list, fraction: float, seed: int) -> tuple[list, list]:
    """Seeded held-out slice for eval loss; at least one example when enabled."""
    import random

    if fraction <= 0 or len(items) < 10:
        return items, []
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, int(len(items) * fraction))
    held = set(order[:n_eval])
    return ([x for i, x in enumerate(items) if i not in held],
            [x for i, x in enumerate(items) if i in held])


def _check_output(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError("the output is a file, not a folder", file=out,
                          fix="pass a folder such as adapters/<domain>/")


def prepare(cfg: TrainConfig, resume: bool = False, world: int = 1) -> Prepared:
    """Check every input and tokenize the data, without loading model weights.

    ``world`` is the number of data-parallel processes: it changes the batches of every step,
    so a checkpoint written by a run of another size is not resumed.

    Raises:
        LocollmError: with the file, line and fix, for the first thing that is wrong.
    """
    from .tokens import tokenize_examples

    if not cfg.dataset or not cfg.output:
        raise ConfigError("training needs a dataset and an output folder",
                          fix="pass --dataset FILE and --output adapters/<domain>/")
    _check_output(Path(cfg.output))
    dataset = Path(cfg.dataset)
    examples = load_examples(dataset)
    base = resolve(cfg.base_model)
    backend = choose_backend(cfg)
    if backend == "unsloth":
        from .unsloth_backend import preload

        preload()  # before transformers, so Unsloth's patches apply
    from transformers import AutoTokenizer

    model_dir = training_dir(base)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    try:
        fmt = format_for_tokenizer(tokenizer)
    except ValueError as exc:
        raise ConfigError(f"cannot use the base model's chat template: {exc}",
                          file=model_dir) from exc
    items = tokenize_examples(examples, tokenizer, cfg.max_seq_len, source=str(dataset),
                              fmt=fmt)
    train_pairs, eval_pairs = split_heldout(list(zip(examples, items, strict=True)),
                                            cfg.eval_fraction, cfg.seed)
    digest = sha256_file(dataset)
    prep = Prepared(cfg, dataset, digest, base, model_dir, tokenizer, fmt, backend,
                    [e for e, _ in train_pairs], [e for e, _ in eval_pairs],
                    [i for _, i in train_pairs], [i for _, i in eval_pairs],
                    checkpoint.fingerprint(cfg, digest, base.sha256 or str(base.name), world))
    state = checkpoint.read_state(cfg.output) if resume else None
    if state is not None:
        checkpoint.check_resumable(state, prep.fingerprint, backend)
    return prep


def _architecture(base: BaseModel, model) -> str:
    if base.gguf is not None:
        from ..gguf.names import read_info

        return read_info(base.gguf).architecture
    return getattr(model.config, "model_type", "unknown").replace("_text", "")


def _config_yaml(cfg: TrainConfig, notes: dict[str, str]) -> str:
    head = ["# Exact config of the last run (locollm train).",
            "# Rerun it with: locollm train --config <this file>"]
    head += [f"# {key}: {value}" for key, value in notes.items()]
    return "\n".join(head) + "\n" + yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def _stage_training_files(stage: Path, prep: Prepared, history: History, notes: dict,
                          diagnosis: Diagnosis) -> None:
    """Write training/ (config, metrics, plot, log, dataset copy) into the staging folder."""
    from .plot import plot_loss

    cfg, out = prep.cfg, Path(prep.cfg.output)
    training = stage / "training"
    training.mkdir()
    if prep.dataset.resolve() != (out / "training" / "dataset.jsonl").resolve():
        shutil.copyfile(prep.dataset, training / "dataset.jsonl")
    (training / "train_config.yaml").write_text(_config_yaml(cfg, notes), encoding="utf-8")
    metrics = {**history.to_dict(), "tokens_per_second": round(history.tokens_per_second, 2),
               "diagnosis": {"verdict": diagnosis.verdict, "reason": diagnosis.reason,
                             **diagnosis.numbers}}
    (training / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    plot_loss(history, training / LOSS_PLOT, title=f"{out.resolve().name}: loss")
    old_log = out / "training" / TRAINING_LOG
    previous = old_log.read_text(encoding="utf-8") if old_log.exists() else \
        f"# Training log: {out.resolve().name}\n"
    facts = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), **notes,
             "Examples": f"{len(prep.train_items)} train, {len(prep.eval_items)} held out for "
                         f"eval loss",
             "Loss plot": f"[{LOSS_PLOT}]({LOSS_PLOT})"}
    section = log_section(diagnosis, history, facts)
    (training / TRAINING_LOG).write_text(previous.rstrip("\n") + "\n\n" + section,
                                         encoding="utf-8")


def _commit(stage: Path, out: Path) -> None:
    """Move every staged file into ``out``; the caller writes the metadata last.

    ``locollm.json`` is what marks a folder as a usable adapter, so it is removed before the
    first new file lands: a run killed half-way through leaves a folder that says "not trained
    yet", never new weights under old metadata. The LoRA GGUF exported from the old weights is
    removed too (it is re-exported on first use).
    """
    (out / METADATA).unlink(missing_ok=True)
    lora_gguf_path(out).unlink(missing_ok=True)
    for path in sorted(stage.rglob("*")):
        if path.is_file():
            dest = out / path.relative_to(stage)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)


def _name_base(config_file: Path, name: str) -> None:
    """PEFT records the folder the base was loaded from, a path into this machine's cache;
    other tools (PEFT, vLLM, Unsloth) need the hub id or embedded name to find the base."""
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = name
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n",
                           encoding="utf-8")


def write_outputs(model, prep: Prepared, history: History, backend: str,
                  notes: dict[str, str] | None = None) -> tuple[Path, Diagnosis]:
    """Write the adapter folder: everything staged under a temporary name, renamed into
    place, metadata last. Returns the folder and the run's diagnosis."""
    cfg, base = prep.cfg, prep.base
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    notes = dict(notes or {})
    diagnosis = diagnose(history)
    for stale in out.glob(".adapter.*.tmp"):  # left by a run killed while writing
        shutil.rmtree(stale, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=".adapter.", suffix=".tmp", dir=out))
    try:
        model.save_pretrained(stage / "peft")  # also writes a README.md we do not want
        _name_base(stage / "peft" / "adapter_config.json", portable_name(base))
        for name in PEFT_FILES:
            os.replace(stage / "peft" / name, stage / name)
        shutil.rmtree(stage / "peft")
        _stage_training_files(stage, prep, history, notes, diagnosis)
        _commit(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    meta = AdapterMeta(
        name=out.resolve().name, base_model=base.name, base_sha256=base.sha256,
        architecture=_architecture(base, model), lora_rank=cfg.lora_rank, lora_alpha=cfg.alpha,
        target_modules=list(cfg.target_modules), prompt_format=prep.fmt.name,
        stop=list(prep.fmt.stop), backend=backend,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    meta.save(out)
    return out, diagnosis


def _run_peft(prep: Prepared, on_step, resume: bool,
              ctx: DistContext) -> tuple[object, History, str]:
    from . import peft_backend

    device = peft_backend.pick_device()
    if ctx.active and device == "mps":
        raise ConfigError("data-parallel training runs on CUDA GPUs or CPUs, not on MPS",
                          fix="run a single process on a Mac (plain `locollm train`)")
    model = peft_backend.load_model(prep.model_dir, prep.cfg, device)
    history = peft_backend.run(model, prep.train_items, prep.eval_items, prep.cfg, prep.pad_id,
                               device, on_step, output=Path(prep.cfg.output), resume=resume,
                               fingerprint=prep.fingerprint, ctx=ctx)
    return model, history, device


def train(cfg: TrainConfig, on_step: Callable[[dict], None] | None = None, *,
          resume: bool = False, notes: dict[str, str] | None = None) -> TrainResult:
    """Train a LoRA adapter as ``cfg`` says and write the adapter folder.

    Under ``torchrun --nproc_per_node N`` or ``accelerate launch`` every process calls this;
    they train data-parallel (:mod:`.distributed`) and rank 0 alone writes the folder, which is
    the one a single process with ``grad_accum x N`` would write.

    Args:
        cfg: the run's configuration.
        on_step: called with a step record (see :func:`.monitor.step_record`) after every
            optimizer step, with ``eval_loss`` on eval steps (on rank 0 only).
        resume: continue from the checkpoint in ``cfg.output`` if there is one.
        notes: extra lines for train_config.yaml and TRAINING_LOG.md (e.g. the profile).
    """
    from .loading import torch_env

    torch_env()
    ctx = distributed.setup()
    try:
        result = _train(cfg, on_step if ctx.is_main else None, resume, notes, ctx)
    except BaseException:
        distributed.shutdown(ctx, wait=False)
        raise
    distributed.shutdown(ctx)
    return result


def _train(cfg: TrainConfig, on_step, resume: bool, notes: dict[str, str] | None,
           ctx: DistContext) -> TrainResult:
    # rank 0 first: it assembles and dequantizes a base the others then find cached
    prep = distributed.main_first(ctx, lambda: prepare(cfg, resume, ctx.world))
    state = checkpoint.read_state(cfg.output) if resume else None
    if prep.backend == "unsloth":
        from . import unsloth_backend

        model, history, device = unsloth_backend.train(prep, on_step, resume, ctx)
    else:
        model, history, device = _run_peft(prep, on_step, resume, ctx)
    facts = {"Base model": f"{prep.base.name} (sha256 {(prep.base.sha256 or 'n/a')[:16]})",
             "Backend": f"{prep.backend} on {device}"
                        + (f" x {ctx.world} processes (data-parallel)" if ctx.active else ""),
             "Prompt format": prep.fmt.label, **(notes or {})}
    if history.resumed_at:
        facts["Resumed at step(s)"] = ", ".join(map(str, history.resumed_at))
    diagnosis = None
    out = Path(cfg.output)
    if ctx.is_main:
        try:
            out, diagnosis = write_outputs(model, prep, history, prep.backend, facts)
        except OSError as exc:
            raise LocollmError(f"could not write the adapter ({exc})", file=cfg.output) from exc
        checkpoint.clear(out)
    return TrainResult(out, history, len(prep.train_items), len(prep.eval_items), prep.backend,
                       device, diagnosis, state["step"] if state else None, ctx.is_main)
