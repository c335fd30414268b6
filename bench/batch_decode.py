"""What one decode step costs by the number of sequences in it: where batching pays on a CPU.

On the embedded Gemma 3 270M, ``k`` sequences (consecutive KV sequences, so llama.cpp evaluates
them as one micro-batch) each decode one token, for k = 1..8: milliseconds per step and per
token, and the same step with no logits asked for, which leaves out the 262k-token vocabulary
projection (the part that dominates). Ratios are against k = 1 in the same run.

Then lanes: two llama.cpp contexts (the engine's lanes) each decoding k rows per step at the
same time from two threads, against the same steps in one lane one after the other
(tokens/s ratio; what ``pick_lanes`` counts on; bounded by the free cores).

Usage: python bench/batch_decode.py [--steps 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from locollm.models import resolve
    from locollm.prompt import format_prompt
    from locollm.runtime.engine import Engine, EngineConfig

    sizes = (1, 2, 3, 4, 6, 8)
    config = EngineConfig(n_ctx=256, n_seq_max=16, lanes=2)
    with Engine(resolve("gemma-3-270m").gguf, config) as engine:
        prompt = engine.tokenize(format_prompt("Name a colour."))
        for seq in range(16):
            engine.decode((), [(seq, prompt, 0)])
        start = len(prompt)

        def step_ms(k: int, logits: bool) -> float:
            best = float("inf")
            for _ in range(args.rounds):
                t = time.perf_counter()
                for i in range(args.steps):
                    rows = [(s, [200 + i], start + i) for s in range(k)]
                    engine.decode((), rows, logits=logits)
                best = min(best, (time.perf_counter() - t) / args.steps)
                for s in range(k):
                    engine.forget(s, start)
            return best * 1e3

        rows = [(k, step_ms(k, True), step_ms(k, False)) for k in sizes]
        lanes = [(k, *two_lanes(engine, k, start, args)) for k in (1, 3)]
    one = rows[0][1]
    print(f"decode step of k sequences, {engine.threads} thread(s) (best of {args.rounds} x "
          f"{args.steps} steps)")
    print("   k   ms/step   ms/token   tokens/s vs k=1   without vocab projection ms/step")
    for k, with_logits, without in rows:
        print(f"  {k:2d}  {with_logits:8.1f}  {with_logits / k:9.1f}   "
              f"{k * one / with_logits:14.2f}x   {without:8.1f}")
    print("two lanes at once vs one lane after the other (k rows a step in each lane)")
    for k, serial, parallel in lanes:
        print(f"  k={k}: one lane {serial:.2f} s, two lanes at once {parallel:.2f} s, "
              f"tokens/s {serial / parallel:.2f}x")


def two_lanes(engine, k: int, start: int, args) -> tuple[float, float]:
    """(seconds one lane after the other, seconds both at once) for ``args.steps`` steps of
    ``k`` rows in each of the two lanes (sequences 0.. and 8..), best of ``args.rounds``."""
    first = engine.seqs_per_lane

    def run(base: int) -> None:
        for i in range(args.steps):
            engine.decode((), [(base + s, [200 + i], start + i) for s in range(k)])
        for s in range(k):
            engine.forget(base + s, start)

    serial = parallel = float("inf")
    for _ in range(args.rounds):
        t = time.perf_counter()
        run(0)
        run(first)
        serial = min(serial, time.perf_counter() - t)
        threads = [threading.Thread(target=run, args=(base,)) for base in (0, first)]
        t = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        parallel = min(parallel, time.perf_counter() - t)
    return serial, parallel


if __name__ == "__main__":
    main()
