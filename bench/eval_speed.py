"""Eval's decoding, batched against one by one, on the same items in the same process.

Both paths go through ``locollm.evaluate.decode.decode`` (the one function every eval decodes
with) on one engine: ``batched=False`` asks ``Engine.complete`` once per item, ``batched=True``
hands every item to ``Engine.complete_batch`` (several sequences decoded step by step in one
llama.cpp context). The answers must be identical (greedy decoding); the script prints both
throughputs and their ratio, and exits 1 if any answer differs. On an engine without
``complete_batch`` both paths are one by one and the ratio is about 1.

Usage: .venv/bin/python bench/eval_speed.py [--items 50] [--max-tokens 96] [--adapter math]
       [--threads N]
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
from locollm.prompt import format_prompt, parse_response  # noqa: E402
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
    args = parser.parse_args()

    folder = resolve_adapter(args.adapter, REPO / "adapters")
    meta = load_meta(folder)
    fmt = meta.fmt()
    items = load_benchmark(folder / "eval" / "benchmark.jsonl", limit=args.items)
    requests = [Request(format_prompt(i.instruction, i.input, fmt), meta.name, args.max_tokens,
                        stop=fmt.stop) for i in items]
    config = EngineConfig(n_threads=args.threads)
    engine, _ = open_engine(None, [folder], config)
    try:
        batching = hasattr(engine, "complete_batch")
        decode(engine, requests[:1], batched=False)  # warm-up: weights paged in, adapter set
        one_s, one = timed(engine, requests, batched=False)
        batch_s, batch = timed(engine, requests, batched=True)
    finally:
        engine.close()
    same = sum(a == b for a, b in zip(one, batch, strict=True))
    n = len(requests)
    print(f"{n} items of {folder / 'eval' / 'benchmark.jsonl'}, adapter {meta.name}, "
          f"max_tokens {args.max_tokens}, threads {config.n_threads or 'default'}")
    if not batching:
        print("this engine has no complete_batch: both paths decode one by one")
    print(f"one by one: {one_s:7.1f} s  {n / one_s:5.2f} items/s")
    print(f"batched:    {batch_s:7.1f} s  {n / batch_s:5.2f} items/s")
    print(f"ratio (batched / one by one throughput): {one_s / batch_s:.2f}x")
    answers_ok = sum(parse_response(a, fmt) == parse_response(b, fmt)
                     for a, b in zip(one, batch, strict=True))
    print(f"identical answers: {same}/{n} raw, {answers_ok}/{n} after the stop strings")
    return 0 if same == n else 1


if __name__ == "__main__":
    sys.exit(main())
