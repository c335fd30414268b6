"""Data-parallel training over several processes, as ``torchrun`` or ``accelerate launch`` start.

Both launchers start one process per GPU (or per CPU worker) and describe the group in the
environment: ``WORLD_SIZE`` processes, this one's global ``RANK`` and its ``LOCAL_RANK`` on
this machine, and ``MASTER_ADDR``/``MASTER_PORT`` where they meet. :func:`context` reads that
(without importing torch, so the CLI can ask cheaply); :func:`setup` joins the process group,
NCCL on CUDA and gloo elsewhere. A plain ``locollm train`` is a group of one and none of this
does anything.

The peft backend uses the helpers below directly rather than wrapping the model in
``DistributedDataParallel``: its loss calls the decoder body and the output layer separately
(:mod:`.loss`), which bypasses a DDP wrapper's ``forward`` and with it DDP's gradient hooks. The
LoRA gradients are a few MB, so one all-reduce of them per optimizer step costs little.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import LocollmError

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in its training group."""

    rank: int = 0  # global index of this process, 0 .. world - 1
    world: int = 1  # processes training together
    local_rank: int = 0  # index on this machine: the GPU this process drives

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes artifacts and logs."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """More than one process trains."""
        return self.world > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value.strip() else default
    except ValueError as exc:
        raise LocollmError(f"{name}={value!r} is not a number",
                           fix="start distributed runs with torchrun or accelerate launch"
                           ) from exc


def context() -> DistContext:
    """The group this process belongs to, from the launcher's environment variables."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise LocollmError(f"RANK={rank} does not fit WORLD_SIZE={world}",
                           fix="start distributed runs with torchrun or accelerate launch")
    return DistContext(rank, world, local)


def is_main_process() -> bool:
    """True unless this is a non-zero rank of a distributed launch (cheap: no torch)."""
    try:
        return context().is_main
    except LocollmError:
        return True


def setup() -> DistContext:
    """Join the process group when launched distributed: NCCL on CUDA machines (each process
    pinned to its ``LOCAL_RANK`` GPU), gloo on CPUs.

    Returns:
        The group; ``world == 1`` (nothing initialised) for a plain run.
    """
    ctx = context()
    if not ctx.active:
        return ctx
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    if cuda:
        # "cuda" then means this rank's own card everywhere (model.to, autocast, memory stats)
        torch.cuda.set_device(ctx.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return ctx


def shutdown(ctx: DistContext, wait: bool = True) -> None:
    """Leave the process group; with ``wait``, first wait until every rank got here (so no
    process exits before rank 0 has written the adapter folder). After an error there is no
    waiting: the other ranks may never arrive, and the launcher stops them."""
    if not ctx.active:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def main_first(ctx: DistContext, fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0, then on every other rank (a cache it builds is then built once).

    A :class:`LocollmError` on rank 0 (bad data, a missing base) is raised on every rank, so
    no process waits forever for a rank that has stopped.
    """
    if not ctx.active:
        return fn()
    import torch.distributed as dist

    message: list[str | None] = [None]
    result = None
    if ctx.is_main:
        try:
            result = fn()
        except LocollmError as exc:
            message[0] = exc.render()
            dist.broadcast_object_list(message, src=0)
            raise
    dist.broadcast_object_list(message, src=0)
    if message[0] is not None:
        raise LocollmError(f"rank 0 stopped before training: {message[0]}")
    return result if ctx.is_main else fn()


def all_reduce_sum(values: list[float], device: str) -> list[float]:
    """The sum of ``values`` over every rank (one collective for the whole list)."""
    import torch
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_reduce_gradients(params: list) -> None:
    """Sum every trainable parameter's gradient over the ranks, in one flat buffer.

    Each rank's loss is already weighted by its share of the step's labelled tokens (summed
    over all ranks), so the sum is exactly the gradient a single process computes over the
    whole global batch.
    """
    import torch
    import torch.distributed as dist
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    for param, synced in zip(params, _unflatten_dense_tensors(flat, grads), strict=True):
        if param.grad is None:
            param.grad = synced
        else:
            param.grad.copy_(synced)


def broadcast_parameters(params: list) -> None:
    """Copy rank 0's values of ``params`` to every rank (same start, whatever each seeded)."""
    import torch.distributed as dist

    for param in params:
        dist.broadcast(param.data, src=0)
