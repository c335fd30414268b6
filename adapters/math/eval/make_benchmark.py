"""Writes eval/benchmark.jsonl: word problems of the training kinds, told in wording training
never uses.

The numbers and the worked steps come from the training generator's ``make``, but every
question is told through ``BENCH_FRAMES`` below: other verbs, other settings, other orders of
facts. No frame is shared with ``training/generate_data.FRAMES`` (tests/test_math_data.py
checks it, and `locollm data check ... --benchmark` finds no near-duplicate prompt), so the
score measures whether the adapter learned the arithmetic, not a template. Each item is scored
by its final number (``evaluation_type: numeric``) and carries a ``difficulty``.

Run: python adapters/math/eval/make_benchmark.py [--n 60] [--seed 777]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "training"))
from generate_data import INSTRUCTION, generate  # noqa: E402

BENCH_FRAMES: dict[str, list[str]] = {
    "add": [
        "On a school trip, {name} counts {a} {thing} in the first hall and {b} in the second "
        "hall. Together, how many {thing} did {name} count?",
        "A garden has {a} red flowers and {b} yellow flowers. Find the number of flowers.",
    ],
    "sub": [
        "A parking lot holds {a} cars. Right now {b} spaces are taken. How many spaces are "
        "free?",
        "{name}'s phone had {a} photos. After deleting {b}, how many photos remain?",
    ],
    "mul": [
        "In a cinema every row has {a} seats, and there are {b} rows. Work out the number of "
        "seats.",
        "{name} plants {b} rows of tulips, {a} tulips per row. How many tulips is that?",
    ],
    "cost": [
        "At the fair, one ride costs {a} dollars. What do {b} rides cost altogether?",
    ],
    "money": [
        "With a {bill} dollar note, {name} pays for {b} sandwiches priced at {a} dollars each. "
        "What change comes back?",
    ],
    "percent": [
        "In a survey of {q} people, {p}% said they like tea. How many people is that?",
    ],
    "percent_price": [
        "A farmer harvests {q} melons and sells {p}% of them at the market for {price} "
        "dollars apiece. What does the farmer earn from them?",
        "There are {q} seats at a concert, and {p}% are sold as front-row seats at {price} "
        "dollars each. How much do the front-row seats earn?",
    ],
    "div_exact": [
        "A ribbon of {a} centimeters is divided into {b} equal parts. What is the length of "
        "one part?",
    ],
    "div_groups": [
        "Eggs go into cartons of {b}. With {a} eggs, how many cartons can be filled to the "
        "top?",
    ],
    "div_rem": [
        "A teacher hands out {a} stickers, {b} per child, to as many children as possible. "
        "How many stickers stay with the teacher?",
    ],
    "div_ceil": [
        "A ferry carries {b} bikes per trip. What is the least number of trips needed to carry "
        "{a} bikes?",
    ],
    "rate": [
        "If {n} bottles of juice are priced at {total} dollars in total, what would {m} "
        "bottles cost?",
    ],
    "speed": [
        "A cyclist covers {total} kilometers in {n} hours at a steady pace. What distance is "
        "covered in one hour?",
    ],
    "two_step": [
        "A shelter starts the week with {a} dogs, takes in {b} more, and finds homes for {c}. "
        "How many dogs are at the shelter at the end of the week?",
    ],
    "sub_mul": [
        "A printer prints {a} pages a minute for {b} minutes, but {c} pages jam and are thrown "
        "away. How many good pages are there?",
    ],
}


BENCH_DISTRACTORS = ["{name}'s best friend is called {name2}, who is {x}.",
                     "The weather is sunny and {x} degrees."]


# The benchmark's own kind mix, fixed so that tuning the training mix never changes it.
BENCH_MIX: dict[str, float] = {
    "add": 0.10, "sub": 0.10, "mul": 0.08, "cost": 0.06, "money": 0.07, "percent": 0.07,
    "percent_price": 0.09, "div_exact": 0.07, "div_groups": 0.05, "div_rem": 0.06,
    "div_ceil": 0.05, "rate": 0.07, "speed": 0.05, "two_step": 0.05, "sub_mul": 0.03,
}


def build(n: int = 60, seed: int = 777) -> list[dict]:
    """``n`` benchmark items, each kind in the training generator's mix."""
    rows = generate(n, random.Random(seed), frames=BENCH_FRAMES, mix=BENCH_MIX,
                    distractors=BENCH_DISTRACTORS)
    return [{"instruction": INSTRUCTION, "input": r["input"], "output": r["output"],
             "difficulty": r["difficulty"], "evaluation_type": "numeric", "kind": r["kind"]}
            for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--out", type=Path, default=HERE / "benchmark.jsonl")
    args = parser.parse_args()
    rows = build(args.n, args.seed)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(args.out)
    print(f"wrote {len(rows)} items to {args.out}")


if __name__ == "__main__":
    main()
