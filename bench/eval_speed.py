"""Eval's decoding, batched against one by one, on the same items in the same process.

Both paths go through ``locollm.evaluate.decode.decode`` (the one function every eval decodes
with) on one engine: ``batched=False`` asks ``Engine.complete`` once per item, ``batched=True``
hands every item to ``Engine.complete_batch`` (several sequences decoded step by step in the
engine's llama.cpp contexts, its lanes, at the same time). An eval decodes each item twice,
with the bare base and with the adapter, so both are measured, then their sum (what
``locollm eval`` spends). The answers must be
identical (greedy decoding); the script prints the throughputs and ratios, and exits 1 if any
answer differs. On an engine without ``complete_batch`` both paths are one by one.

With the default ``batch_invariant`` engine a decode call holds at most ``Engine.exact_rows``
rows (more change some rows' logits), and a lone adapter row gets a pad row (``Engine.decode``);
``--no-batch-invariant`` lifts both, and the identical-answers line then shows what that costs.

Usage: .venv/bin/python bench/eval_speed.py [--items 50] [--max-tokens 96] [--adapter math]
       [--threads N] [--threads-batch N] [--no-batch-invariant]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from locollm.adapter.meta import load_meta, resolve_adapter  # noqa: E402
from locollm.evaluate.benchmark import load_benchmark  # noqa: E402
from locollm.evaluate.decode import Request, decode  # noqa: E402
from locollm.prompt import format_prompt  # noqa: E402
from locollm.runtime.engine import EngineConfig  # noqa: E402
from locollm.runtime.session import open_engine  # noqa: E402


def timed(engine, requests: list[Request], batched: bool) -> tuple[float, list[str]]:
    """Seconds for all ``requests`` and the raw answers."""
    start = time.perf_counter()
    out = decode(engine, requests, batched=batched)
    return time.perf_counter() - start, [c.text for c in out]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", default="math", help="adapter folder or domain")
    parser.add_argument("--items", type=int, default=50, help="benchmark items to decode")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads")
    parser.add_argument("--threads-batch", type=int, default=None,
                        help="llama.cpp threads for multi-token decode calls")
    parser.add_argument("--no-batch-invariant", action="store_true",
                        help="let the engine batch adapter rows (answers may then differ)")
    args = parser.parse_args()

    folder = resolve_adapter(args.adapter, REPO / "adapters")
    meta = load_meta(folder)
    fmt = meta.fmt()
    items = load_benchmark(folder / "eval" / "benchmark.jsonl", limit=args.items)
    options = {"n_threads": args.threads, "batch_invariant": not args.no_batch_invariant}
    if args.threads_batch:
        options["n_threads_batch"] = args.threads_batch
    config = EngineConfig(**options)
    engine, _ = open_engine(None, [folder], config)
    rows, differing = [], 0
    try:
        batching = hasattr(engine, "complete_batch")
        for label, adapter in (("base", None), ("adapter", meta.name)):
            requests = [Request(format_prompt(i.instruction, i.input, fmt), adapter,
                                args.max_tokens, stop=fmt.stop) for i in items]
            decode(engine, requests[:1], batched=False)  # warm-up: pages in, adapter set
            one_s, one = timed(engine, requests, batched=False)
            batch_s, batch = timed(engine, requests, batched=True)
            same = sum(a == b for a, b in zip(one, batch, strict=True))
            differing += len(requests) - same
            rows.append((label, len(requests), one_s, batch_s, same))
    finally:
        engine.close()
    print(f"{len(items)} items of {folder / 'eval' / 'benchmark.jsonl'}, adapter {meta.name}, "
          f"max_tokens {args.max_tokens}, {config}")
    if not batching:
        print("this engine has no complete_batch: both paths decode one by one")
    total = ("eval (both)", sum(r[1] for r in rows), sum(r[2] for r in rows),
             sum(r[3] for r in rows), sum(r[4] for r in rows))
    print(f"{'':<12}{'one by one':>16}{'batched':>16}{'ratio':>8}  identical answers")
    for label, n, one_s, batch_s, same in [*rows, total]:
        print(f"{label:<12}{one_s:>8.1f} s {n / one_s:4.2f}/s{batch_s:>8.1f} s "
              f"{n / batch_s:4.2f}/s{one_s / batch_s:>7.2f}x  {same}/{n}")
    return 0 if differing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
