"""All of eval's decoding goes through :func:`decode`: batched where the engine can, else one by
one, with a callback as each answer finishes (the progress bar and the running score hook it).

The llama.cpp engine's ``complete_batch`` decodes several sequences in its contexts, step by
step, and is meant to give the greedy answers ``complete`` gives one by one
(``bench/eval_speed.py`` checks that on the benchmark); the transformers engine batches with
padding. An engine without ``complete_batch`` (an older engine, a test's stand-in) is asked one
request at a time, in order, as is every engine with ``batched=False`` (``--one-by-one``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    """One greedy completion eval needs (the fields of the runtime's ``GenRequest``)."""

    prompt: str
    adapter: str | None = None  # None: the bare base
    max_tokens: int = 256
    temperature: float = 0.0  # eval is greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


def _batch_requests(requests: Sequence[Request]) -> list:
    try:
        from ..runtime.engine import GenRequest
    except ImportError:  # a runtime without batching: engines that batch take these as they are
        return list(requests)
    return [GenRequest(prompt=r.prompt, adapter=r.adapter, max_tokens=r.max_tokens,
                       temperature=r.temperature, top_p=r.top_p, stop=tuple(r.stop),
                       seed=r.seed) for r in requests]


def decode(engine, requests: Sequence[Request],
           on_done: Callable[[int, object], object] | None = None, *,
           batched: bool = True) -> list:
    """Greedy completions of ``requests`` (temperature 0), in request order.

    Args:
        engine: a runtime engine (``complete``, and ``complete_batch`` where it has one).
        requests: what to complete.
        on_done: called as ``on_done(i, completion)`` as each request finishes.
        batched: use ``complete_batch`` when the engine has it (False: one by one, the
            baseline ``bench/eval_speed.py`` measures against).
    """
    if batched and hasattr(engine, "complete_batch"):
        return list(engine.complete_batch(_batch_requests(requests), on_done=on_done))
    out = []
    for i, r in enumerate(requests):
        completion = engine.complete(r.prompt, adapter=r.adapter, max_tokens=r.max_tokens,
                                     temperature=r.temperature, stop=r.stop)
        out.append(completion)
        if on_done is not None:
            on_done(i, completion)
    return out
