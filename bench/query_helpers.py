"""Inference-time helpers on the math benchmark: re-reading (RE2) and self-consistency votes.

The shipped math adapter answers the first ``--limit`` problems of
adapters/math/eval/benchmark.jsonl four ways, scored like ``locollm eval`` (final answer,
exact match): greedy; greedy with the question re-read (``loco query --reread``);
``--votes`` samples at temperature 0.7 with a majority vote on the extracted answer, without
and with re-reading. The samples of all problems are decoded together by the engine.

Usage: python bench/query_helpers.py [--limit 30] [--votes 5] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--votes", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    from locollm.adapter.meta import default_instruction
    from locollm.data.jsonl import load_examples
    from locollm.evaluate.scorers import is_correct
    from locollm.prompt import format_prompt, parse_response
    from locollm.runtime.engine import EngineConfig, GenRequest
    from locollm.runtime.query import VOTE_TEMPERATURE, majority, reread
    from locollm.runtime.session import open_engine

    items = load_examples(REPO / "adapters" / "math" / "eval" / "benchmark.jsonl")[:args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "math"
        shutil.copytree(REPO / "adapters" / "math", folder,
                        ignore=shutil.ignore_patterns("*.gguf"))
        instruction = default_instruction(folder)
        # sampled answers need no bit-exactness: let the engine batch all of them
        engine, metas = open_engine(None, [folder], EngineConfig(n_ctx=1024,
                                                                 batch_invariant=False))
        fmt = metas["math"].fmt()

        def prompt(ex, twice: bool) -> str:
            question = reread(ex.input) if twice else ex.input
            return format_prompt(instruction or ex.instruction, question, fmt)

        rows = []
        for twice in (False, True):
            start = time.perf_counter()
            outs = engine.complete_batch([GenRequest(prompt(ex, twice), "math", args.max_tokens,
                                                     stop=fmt.stop) for ex in items])
            score = sum(is_correct(parse_response(o.text, fmt), ex.output)
                        for o, ex in zip(outs, items, strict=True))
            rows.append((f"greedy{', re-read' if twice else ''}", score,
                         time.perf_counter() - start))
        for twice in (False, True):
            start = time.perf_counter()
            requests = [GenRequest(prompt(ex, twice), "math", args.max_tokens,
                                   VOTE_TEMPERATURE, stop=fmt.stop, seed=s)
                        for ex in items for s in range(args.votes)]
            outs = engine.complete_batch(requests)
            score = 0
            for i, ex in enumerate(items):
                answers = [parse_response(o.text, fmt)
                           for o in outs[i * args.votes:(i + 1) * args.votes]]
                pick, _ = majority(answers)
                score += is_correct(answers[pick], ex.output)
            rows.append((f"{args.votes} votes{', re-read' if twice else ''}", score,
                         time.perf_counter() - start))
        engine.close()

    print(f"math adapter on the first {len(items)} benchmark problems "
          f"(max_tokens {args.max_tokens}):")
    base_score = rows[0][1]
    for name, score, seconds in rows:
        print(f"  {name:<22} {score:3d}/{len(items)} = {score / len(items):6.1%}   "
              f"({score - base_score:+d} vs greedy, {seconds:6.1f} s)")


if __name__ == "__main__":
    main()
