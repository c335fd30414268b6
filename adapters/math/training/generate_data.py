"""Deterministic arithmetic word problems for the math adapter, worked step by step.

Three families, pitched at what Gemma 3 270M can learn on a CPU in a few minutes:

  easy    two-digit addition                       Step 1 tens, Step 2 ones, Step 3 combine
  medium  two-digit subtraction                    Step 1 take away tens, Step 2 the ones
  hard    two-digit x one-digit multiplication     Step 1 tens, Step 2 ones, Step 3 add

Each family has a person-and-things story and a bakery story (the guide's example), and about a
quarter of the problems are edge cases picked on purpose: carries and borrows, round numbers,
zeros in the ones place, doubles, small differences. Every answer ends with
``The answer is N.`` so eval can score the final number exactly.

Writes (relative to this file's adapter folder):
  training/dataset.jsonl   training examples (40% easy, 40% medium, 20% hard)
  eval/benchmark.jsonl     held-out benchmark, 30/50/20 easy/medium/hard; no (operation,
                           numbers) shared with training, so no benchmark problem is in it
  eval/ood.jsonl           out-of-domain questions the adapter must not damage

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
GOODS = ["muffins", "cookies", "rolls", "bagels", "pies", "scones"]
EDGE_SHARE = 0.25
BENCH_MIX = {"easy": 0.3, "medium": 0.5, "hard": 0.2}
TRAIN_MIX = {"easy": 0.4, "medium": 0.4, "hard": 0.2}


def _split_tens(n: int) -> tuple[int, int]:
    return n // 10 * 10, n % 10


def _add_numbers(rng: random.Random, edge: bool) -> tuple[int, int]:
    if not edge:
        return rng.randint(10, 89), rng.randint(10, 89)
    kind = rng.choice(["carry", "round", "ten", "double"])
    if kind == "carry":  # the ones make a new ten
        a = rng.randint(1, 7) * 10 + rng.randint(5, 9)
        b = rng.randint(1, 8 - a // 10) * 10 + rng.randint(10 - a % 10, 9)
    elif kind == "round":  # a zero in the ones place
        a, b = rng.randint(1, 8) * 10, rng.randint(10, 89)
    elif kind == "ten":  # the ones add up to exactly ten
        a = rng.randint(10, 79)
        a += 1 if a % 10 == 0 else 0
        b = rng.randint(1, 8 - a // 10) * 10 + (10 - a % 10)
    else:
        a = b = rng.randint(11, 49)
    return (a, b) if rng.random() < 0.5 else (b, a)


def _sub_numbers(rng: random.Random, edge: bool) -> tuple[int, int]:
    if not edge:
        a = rng.randint(40, 99)
        return a, rng.randint(11, a - 10)
    kind = rng.choice(["borrow", "round", "zero-left", "small"])
    if kind == "borrow":  # more ones to take away than there are
        a = rng.randint(3, 9) * 10 + rng.randint(0, 5)
        return a, rng.randint(1, a // 10 - 1) * 10 + rng.randint(a % 10 + 1, 9)
    if kind == "round":  # taking away a round number
        a = rng.randint(31, 99)
        return a, rng.randint(1, a // 10 - 1) * 10
    if kind == "zero-left":  # the answer is a round number
        a = rng.randint(31, 99)
        return a, rng.randint(1, a // 10 - 1) * 10 + a % 10
    a = rng.randint(20, 99)  # only a few are left
    return a, a - rng.randint(1, 9)


def _mul_numbers(rng: random.Random, edge: bool) -> tuple[int, int]:
    if not edge:
        return rng.randint(11, 49), rng.randint(2, 9)
    kind = rng.choice(["round", "carry", "nines"])
    if kind == "round":  # a zero in the ones place
        return rng.randint(1, 9) * 10, rng.randint(2, 9)
    if kind == "carry":  # the ones product is ten or more
        b = rng.randint(3, 9)
        return rng.randint(1, 4) * 10 + rng.randint(-(-10 // b), 9), b
    return rng.randint(11, 49), 9


# Each operation told as two stories: a person with things, and the guide's bakery.
STORIES = {
    "add": ("{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?",
            "A bakery bakes {a} {goods} in the morning and {b} {goods} in the afternoon. "
            "How many {goods} does it bake in total?"),
    "sub": ("{name} had {a} {item} and gave away {b}. How many {item} are left?",
            "A bakery baked {a} {goods} and sold {b} of them. How many {goods} are left?"),
    "mul": ("A box holds {a} {item}. How many {item} are in {b} boxes?",
            "A bakery puts {a} {goods} on each tray. How many {goods} are on {b} trays?"),
}


def _story(op: str, a: int, b: int, rng: random.Random) -> str:
    person, bakery = STORIES[op]
    if rng.random() < 0.6:
        return person.format(name=rng.choice(NAMES), item=rng.choice(ITEMS), a=a, b=b)
    return bakery.format(goods=rng.choice(GOODS), a=a, b=b)


def _add_steps(a: int, b: int) -> str:
    (ta, oa), (tb, ob) = _split_tens(a), _split_tens(b)
    return (f"Step 1: Add the tens. {ta} + {tb} = {ta + tb}\n"
            f"Step 2: Add the ones. {oa} + {ob} = {oa + ob}\n"
            f"Step 3: Combine. {ta + tb} + {oa + ob} = {a + b}\n\n"
            f"The answer is {a + b}.")


def _sub_steps(a: int, b: int) -> str:
    tb, ob = _split_tens(b)
    return (f"Step 1: Take away the tens. {a} - {tb} = {a - tb}\n"
            f"Step 2: Take away the ones. {a - tb} - {ob} = {a - b}\n\n"
            f"The answer is {a - b}.")


def _mul_steps(a: int, b: int) -> str:
    ta, oa = _split_tens(a)
    return (f"Step 1: Multiply the tens. {ta} x {b} = {ta * b}\n"
            f"Step 2: Multiply the ones. {oa} x {b} = {oa * b}\n"
            f"Step 3: Add. {ta * b} + {oa * b} = {a * b}\n\n"
            f"The answer is {a * b}.")


# difficulty -> (operation, numbers, worked steps)
FAMILIES = {"easy": ("add", _add_numbers, _add_steps),
            "medium": ("sub", _sub_numbers, _sub_steps),
            "hard": ("mul", _mul_numbers, _mul_steps)}


def make_problem(level: str, rng: random.Random, edge: bool) -> tuple[str, str, tuple]:
    """One problem of a difficulty level: question, worked answer, and its identity key."""
    op, numbers, steps = FAMILIES[level]
    a, b = numbers(rng, edge)
    return _story(op, a, b, rng), steps(a, b), (op, a, b)


# General questions with short exact answers a base model may know; the adapter must not lose
# them. Each is asked as a bare instruction (as `loco query` asks) and scored like the benchmark:
# the number for counting questions, else the answer word against the last line of the reply.
OOD = {
    "capital": [(f"What is the capital of {country}?", city)
                for country, city in (("France", "Paris"), ("Japan", "Tokyo"),
                                      ("Italy", "Rome"), ("Spain", "Madrid"),
                                      ("Germany", "Berlin"), ("England", "London"),
                                      ("Egypt", "Cairo"), ("Russia", "Moscow"),
                                      ("Greece", "Athens"), ("Canada", "Ottawa"))],
    "opposite": [(f"What is the opposite of {word}?", other)
                 for word, other in (("hot", "cold"), ("up", "down"), ("day", "night"),
                                     ("big", "small"), ("fast", "slow"), ("open", "closed"),
                                     ("happy", "sad"), ("left", "right"), ("old", "new"),
                                     ("wet", "dry"))],
    "counting": [("How many days are in a week?", "7"),
                 ("How many legs does a spider have?", "8"),
                 ("How many months are in a year?", "12"),
                 ("How many sides does a triangle have?", "3"),
                 ("How many wheels does a bicycle have?", "2"),
                 ("How many hours are in a day?", "24"),
                 ("How many minutes are in an hour?", "60"),
                 ("How many sides does a square have?", "4"),
                 ("How many letters are in the word cat?", "3"),
                 ("How many legs does a dog have?", "4")],
    "general": [("What color is grass?", "Green"),
                ("What color is the sky on a clear day?", "Blue"),
                ("Which animal says moo?", "Cow"),
                ("What is frozen water called?", "Ice"),
                ("What is the plural of mouse?", "Mice"),
                ("Which day comes after Monday?", "Tuesday"),
                ("Which month comes after January?", "February"),
                ("What is the largest planet in our solar system?", "Jupiter"),
                ("What do bees make?", "Honey"),
                ("What is the first letter of the English alphabet?", "A")],
}


def generate(n: int, mix: dict[str, float], rng: random.Random, used: set) -> list[dict]:
    """``n`` problems in the given difficulty mix, none whose key is in ``used``."""
    rows = []
    for level, share in mix.items():
        want = round(n * share)
        while want > 0:
            q, a, key = make_problem(level, rng, rng.random() < EDGE_SHARE)
            if key in used:
                continue
            used.add(key)
            rows.append({"instruction": INSTRUCTION, "input": q, "output": a,
                         "difficulty": level})
            want -= 1
    rng.shuffle(rows)
    return rows


def ood_rows() -> list[dict]:
    """The out-of-domain set, in a fixed order."""
    return [{"instruction": q, "input": "", "output": a, "category": category}
            for category, pairs in OOD.items() for q, a in pairs]


def build(train: int = 600, bench: int = 60, seed: int = 1234) -> dict[str, list[dict]]:
    """Every file's rows; the benchmark is drawn first so training skips its problems."""
    rng = random.Random(seed)
    used: set = set()
    bench_rows = generate(bench, BENCH_MIX, rng, used)
    train_rows = generate(train, TRAIN_MIX, rng, used)
    return {"training/dataset.jsonl": train_rows, "eval/benchmark.jsonl": bench_rows,
            "eval/ood.jsonl": ood_rows()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--bench", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    for name, rows in build(args.train, args.bench, args.seed).items():
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        tmp.replace(path)
        print(f"wrote {len(rows)} examples to {path}")


if __name__ == "__main__":
    main()
