"""Deterministic arithmetic word problems for the math adapter, worked step by step.

Writes (relative to this file's adapter folder):
  training/dataset.jsonl   training examples
  eval/benchmark.jsonl     held-out benchmark (no problem shared with training)

Every answer ends with ``The answer is N.`` so eval can score the final number exactly.
Run: python adapters/math/training/generate_data.py [--train N] [--bench N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

INSTRUCTION = ("Solve the following arithmetic word problem. Show your reasoning step by step, "
               "then give the final answer.")
NAMES = ["Tom", "Ana", "Lee", "Maya", "Sam", "Nora", "Ravi", "Ella", "Omar", "Zoe"]
ITEMS = ["apples", "marbles", "stickers", "books", "coins", "pencils", "cards", "shells"]


def _add(rng: random.Random) -> tuple[str, str, str, tuple]:
    a, b = rng.randint(10, 89), rng.randint(10, 89)
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    q = f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?"
    ta, oa, tb, ob = a // 10 * 10, a % 10, b // 10 * 10, b % 10
    steps = (f"Step 1: Add the tens. {ta} + {tb} = {ta + tb}\n"
             f"Step 2: Add the ones. {oa} + {ob} = {oa + ob}\n"
             f"Step 3: Combine. {ta + tb} + {oa + ob} = {a + b}\n\n"
             f"The answer is {a + b}.")
    return "easy", q, steps, ("add", a, b)


def _sub(rng: random.Random) -> tuple[str, str, str, tuple]:
    a = rng.randint(40, 99)
    b = rng.randint(11, a - 10)
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    q = f"{name} had {a} {item} and gave away {b}. How many {item} are left?"
    tb, ob = b // 10 * 10, b % 10
    steps = (f"Step 1: Take away the tens. {a} - {tb} = {a - tb}\n"
             f"Step 2: Take away the ones. {a - tb} - {ob} = {a - b}\n\n"
             f"The answer is {a - b}.")
    return "medium", q, steps, ("sub", a, b)


def _mul(rng: random.Random) -> tuple[str, str, str, tuple]:
    a, b = rng.randint(11, 49), rng.randint(2, 9)
    item = rng.choice(ITEMS)
    q = f"A box holds {a} {item}. How many {item} are in {b} boxes?"
    ta, oa = a // 10 * 10, a % 10
    steps = (f"Step 1: Multiply the tens. {ta} x {b} = {ta * b}\n"
             f"Step 2: Multiply the ones. {oa} x {b} = {oa * b}\n"
             f"Step 3: Add. {ta * b} + {oa * b} = {a * b}\n\n"
             f"The answer is {a * b}.")
    return "hard", q, steps, ("mul", a, b)


MAKERS = {"easy": _add, "medium": _sub, "hard": _mul}


def generate(n: int, mix: dict[str, float], rng: random.Random, used: set) -> list[dict]:
    """``n`` problems in the given difficulty mix, none whose key is in ``used``."""
    rows = []
    for level, share in mix.items():
        want = round(n * share)
        while want > 0:
            difficulty, q, a, key = MAKERS[level](rng)
            if key in used:
                continue
            used.add(key)
            rows.append({"instruction": INSTRUCTION, "input": q, "output": a,
                         "difficulty": difficulty})
            want -= 1
    rng.shuffle(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--bench", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    rng = random.Random(args.seed)
    used: set = set()
    bench = generate(args.bench, {"easy": 0.3, "medium": 0.5, "hard": 0.2}, rng, used)
    train = generate(args.train, {"easy": 0.4, "medium": 0.4, "hard": 0.2}, rng, used)
    for name, rows in (("training/dataset.jsonl", train), ("eval/benchmark.jsonl", bench)):
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        tmp.replace(path)
        print(f"wrote {len(rows)} examples to {path}")


if __name__ == "__main__":
    main()
