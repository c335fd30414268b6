"""Resumable checkpoints: an interrupted run continues with ``--resume`` and loses at most one
``save_every`` interval.

The peft backend writes ``<output>/.checkpoint/``: the LoRA weights, optimizer and scheduler
state, the random-number states, the remaining batch order and the loss history, so a resumed
run takes the same steps the uninterrupted run would have taken. The folder is written with
:func:`locollm.paths.atomic_dir`, so a kill -9 mid-save leaves the previous checkpoint. The
unsloth backend keeps Hugging Face Trainer checkpoints under the same folder.

A checkpoint remembers a *fingerprint* of everything that decides the trajectory (config,
dataset hash, base model); resuming with a different one is refused with the differences named.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..config import TrainConfig
from ..errors import ConfigError
from ..paths import atomic_dir
from .monitor import History

CHECKPOINT = ".checkpoint"
STATE = "state.json"
# Config fields that may change between an interrupted run and its --resume: they do not
# change which weights the run produces.
FREE_FIELDS = frozenset({"threads", "save_every", "eval_every", "output", "dataset", "backend",
                         "gradient_checkpointing"})


@dataclass
class LoopState:
    """The part of the peft training loop a checkpoint restores."""

    step: int  # optimizer steps done
    queue: list[list[int]]  # batches (indices into the training items) left in this epoch
    rng: random.Random  # shuffles the next epoch
    history: History


def checkpoint_dir(output: str | Path) -> Path:
    """Where a run writing to ``output`` keeps its checkpoint."""
    return Path(output) / CHECKPOINT


def find(output: str | Path) -> Path | None:
    """The newest complete checkpoint folder for ``output``, if any.

    ``atomic_dir`` moves the previous folder aside before renaming the new one in; a kill
    between the two renames leaves only the moved-aside copy, which is still complete.
    """
    main = checkpoint_dir(output)
    for folder in (main, main.with_name(f".{main.name}.old")):
        if (folder / STATE).exists():
            return folder
    return None


def read_state(output: str | Path) -> dict | None:
    """The checkpoint's ``state.json`` (step, fingerprint, backend), or None."""
    folder = find(output)
    if folder is None:
        return None
    return json.loads((folder / STATE).read_text(encoding="utf-8"))


def fingerprint(cfg: TrainConfig, dataset_sha256: str, base_id: str, world: int = 1) -> dict:
    """Everything that must match for a resumed run to continue the same training.

    ``world`` (data-parallel processes) decides the batches of every step, like grad_accum.
    """
    keys = {k: v for k, v in cfg.to_dict().items() if k not in FREE_FIELDS}
    return {**keys, "dataset_sha256": dataset_sha256, "base": base_id, "world_size": world}


def check_resumable(state: dict, current: dict, backend: str) -> None:
    """Refuse to resume a checkpoint written by a different run, naming what differs."""
    if state.get("backend") != backend:
        raise ConfigError(f"the checkpoint was written by the {state.get('backend')} backend, "
                          f"this run uses {backend}",
                          fix=f"pass --backend {state.get('backend')}, or drop --resume")
    # checkpoints from before data-parallel training were all written by one process
    saved = {"world_size": 1, **state.get("fingerprint", {})}
    diffs = [f"{k}: {saved.get(k)!r} in the checkpoint, {current.get(k)!r} now"
             for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]
    if diffs:
        raise ConfigError("cannot resume: this run differs from the interrupted one ("
                          + "; ".join(diffs) + ")",
                          fix="resume with the original flags and data, or drop --resume to "
                              "start over")


def clear(output: str | Path) -> None:
    """Delete the checkpoint once the final adapter is in place."""
    main = checkpoint_dir(output)
    for folder in (main, main.with_name(f".{main.name}.old")):
        shutil.rmtree(folder, ignore_errors=True)


def _rng_to_json(rng: random.Random) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _rng_from_json(data: list) -> random.Random:
    rng = random.Random()
    rng.setstate((data[0], tuple(data[1]), data[2]))
    return rng


def save_peft(output: str | Path, model, optimizer, scheduler, scaler, loop: LoopState,
              fp: dict) -> Path:
    """Write a complete peft-backend checkpoint for ``loop.step``, replacing the previous one."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    weights = {k: v.detach().cpu().contiguous()
               for k, v in get_peft_model_state_dict(model).items()}
    with atomic_dir(checkpoint_dir(output)) as tmp:
        save_file(weights, str(tmp / "adapter_model.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "torch_rng": torch.get_rng_state()}, tmp / "optimizer.pt")
        state = {"backend": "peft", "step": loop.step, "queue": loop.queue,
                 "rng": _rng_to_json(loop.rng), "history": loop.history.to_dict(),
                 "fingerprint": fp}
        (tmp / STATE).write_text(json.dumps(state), encoding="utf-8")
    return checkpoint_dir(output)


def restore_peft(output: str | Path, model, optimizer, scheduler, scaler) -> LoopState:
    """Load the checkpoint into ``model``, ``optimizer``, ``scheduler``; return the loop state."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = find(output)
    if folder is None:
        raise ConfigError("no checkpoint to resume from", file=checkpoint_dir(output))
    state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
    saved = torch.load(folder / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    if scaler is not None and saved["scaler"] is not None:
        scaler.load_state_dict(saved["scaler"])
    torch.set_rng_state(saved["torch_rng"])
    return LoopState(state["step"], state["queue"], _rng_from_json(state["rng"]),
                     History.from_dict(state["history"]))
