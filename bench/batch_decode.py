"""What one decode step costs by the number of sequences in it: where batching pays on a CPU.

On the embedded Gemma 3 270M, ``k`` sequences (consecutive KV sequences, so llama.cpp evaluates
them as one micro-batch) each decode one token, for k = 1..8: milliseconds per step and per
token, and the same step with no logits asked for, which leaves out the 262k-token vocabulary
projection (the part that dominates). Ratios are against k = 1 in the same run.

Usage: python bench/batch_decode.py [--steps 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
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
    with Engine(resolve("gemma-3-270m").gguf, EngineConfig(n_ctx=256, n_seq_max=8)) as engine:
        prompt = engine.tokenize(format_prompt("Name a colour."))
        for seq in range(8):
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
    one = rows[0][1]
    print(f"decode step of k sequences, {engine.threads} thread(s) (best of {args.rounds} x "
          f"{args.steps} steps)")
    print("   k   ms/step   ms/token   tokens/s vs k=1   without vocab projection ms/step")
    for k, with_logits, without in rows:
        print(f"  {k:2d}  {with_logits:8.1f}  {with_logits / k:9.1f}   "
              f"{k * one / with_logits:14.2f}x   {without:8.1f}")


if __name__ == "__main__":
    main()
