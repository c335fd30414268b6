"""Deterministic order sentences for the extract adapter: one sentence in, one JSON object out.

A small shop's order log: a sentence someone typed ("Ana Lopez ordered 3 boxes of printer paper
on March 4 for $42.50") becomes the record a spreadsheet or an API takes:

  {"name": "Ana Lopez", "item": "printer paper", "quantity": 3, "date": "March 4",
   "amount": 42.5}

Keys always come in that order; a field the sentence does not state is ``null``; ``quantity``
and ``amount`` are JSON numbers (no "$", no quotes); ``date`` is copied as written.

  easy    every field, in the sentence's natural order
  medium  the fields reordered in the sentence (date or amount first, passive voice)
  hard    a field missing (null), or a distractor number (an order number, a phone extension)

Training and benchmark use disjoint sentence templates (TRAIN_TEMPLATES / BENCH_TEMPLATES), so
the benchmark measures the task, not a memorised wording.

Writes (relative to this file's adapter folder):
  training/dataset.jsonl   training examples (40% easy, 35% medium, 25% hard)
  eval/benchmark.jsonl     held-out benchmark with ``evaluation_type: json`` and ``difficulty``

Run: python adapters/extract/training/generate_data.py [--train N] [--bench N] [--seed S]
     [--replay training/replay.jsonl --replay-share 0.3]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from locollm.data.replay import mix_replay

INSTRUCTION = ("Extract the order from the text as JSON with the keys name, item, quantity, "
               "date and amount. Use null for a field the text does not give.")
FIRST = ["Ana", "Tom", "Maya", "Ravi", "Nora", "Omar", "Ella", "Sam", "Lena", "Kofi", "Mei",
         "Diego", "Priya", "Jonas", "Sara", "Ivan"]
LAST = ["Lopez", "Chen", "Patel", "Smith", "Okafor", "Novak", "Garcia", "Kim", "Brown", "Rossi",
        "Haddad", "Silva", "Jensen", "Mensah"]
ITEMS = ["printer paper", "desk lamps", "coffee beans", "notebooks", "USB cables", "office chairs",
         "ink cartridges", "water bottles", "sticky notes", "headphones", "monitor stands",
         "whiteboard markers", "paper cups", "keyboards", "tea bags", "folders"]
UNITS = ["boxes of", "packs of", "cases of", "bags of", "sets of"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]

# {n}: name, {q}: quantity phrase, {i}: item, {d}: date, {a}: amount, {x}: distractor
TRAIN_TEMPLATES = {
    "easy": [
        "{n} ordered {q} {i} on {d} for {a}.",
        "{n} bought {q} {i} on {d}, paying {a}.",
        "On {d}, {n} purchased {q} {i} for a total of {a}.",
    ],
    "medium": [
        "{a} was charged to {n} on {d} for {q} {i}.",
        "{q} {i} were ordered by {n} on {d}; the bill came to {a}.",
        "For {a}, {n} picked up {q} {i} on {d}.",
    ],
    "hard_missing_date": ["{n} ordered {q} {i} for {a}."],
    "hard_missing_amount": ["On {d}, {n} ordered {q} {i}; the price is still to be confirmed."],
    "hard_distractor": ["Order #{x}: {n} bought {q} {i} on {d} for {a}."],
}
BENCH_TEMPLATES = {
    "easy": [
        "{n} placed an order for {q} {i} on {d} totalling {a}.",
        "Customer {n} requested {q} {i} on {d} and paid {a}.",
    ],
    "medium": [
        "Invoice dated {d}: {q} {i} for {n}, amount due {a}.",
        "A payment of {a} from {n} covered {q} {i}, delivered {d}.",
    ],
    "hard_missing_date": ["Please send {q} {i} to {n}; quoted price {a}."],
    "hard_missing_amount": ["{n} reserved {q} {i} for pickup on {d}, price not agreed yet."],
    "hard_distractor": ["Ticket {x} from {n}: {q} {i} arrived {d}, charged {a}."],
}
TRAIN_MIX = {"easy": 0.4, "medium": 0.35, "hard": 0.25}
BENCH_MIX = {"easy": 0.3, "medium": 0.4, "hard": 0.3}
WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def _record(rng: random.Random) -> tuple[dict, dict]:
    """A random order: the JSON record and the phrases a sentence states it with."""
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    item = rng.choice(ITEMS)
    quantity = rng.randint(1, 40)
    date = f"{rng.choice(MONTHS)} {rng.randint(1, 28)}"
    cents = rng.choice([0, 0, 50, 25, 99, rng.randint(1, 99)])
    amount = rng.randint(5, 900) + cents / 100
    unit = rng.choice(UNITS) if rng.random() < 0.4 else ""
    q_text = WORDS[quantity] if quantity in WORDS and rng.random() < 0.3 else str(quantity)
    phrases = {"n": name, "q": f"{q_text} {unit}".strip(), "i": item, "d": date,
               "a": f"${amount:,.2f}" if cents else f"${int(amount)}",
               "x": str(rng.randint(1000, 99999))}
    record = {"name": name, "item": item, "quantity": quantity, "date": date,
              "amount": round(amount, 2) if cents else int(amount)}
    return record, phrases


def _example(rng: random.Random, templates: dict, difficulty: str) -> dict:
    record, phrases = _record(rng)
    kind = difficulty
    if difficulty == "hard":
        kind = rng.choice(["hard_missing_date", "hard_missing_amount", "hard_distractor"])
        if kind == "hard_missing_date":
            record["date"] = None
        elif kind == "hard_missing_amount":
            record["amount"] = None
    text = rng.choice(templates[kind]).format(**phrases)
    return {"instruction": INSTRUCTION, "input": text,
            "output": json.dumps(record, ensure_ascii=False), "difficulty": difficulty}


def _draw(rng: random.Random, templates: dict, mix: dict, n: int) -> list[dict]:
    counts = {k: round(n * v) for k, v in mix.items()}
    counts["easy"] += n - sum(counts.values())
    rows = [_example(rng, templates, d) for d, c in counts.items() for _ in range(c)]
    rng.shuffle(rows)
    return rows


def generate(n_train: int, n_bench: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Training rows and benchmark rows; no benchmark sentence appears in training."""
    rng = random.Random(seed)
    bench = _draw(rng, BENCH_TEMPLATES, BENCH_MIX, n_bench)
    for row in bench:
        row["evaluation_type"] = "json"
    train = _draw(rng, TRAIN_TEMPLATES, TRAIN_MIX, n_train)
    return train, bench


def _write(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                   encoding="utf-8")
    tmp.replace(path)


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=240)
    parser.add_argument("--bench", type=int, default=60)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--replay", type=Path, default=root / "training" / "replay.jsonl",
                        help="replay JSONL from `locollm data replay` (skipped if missing)")
    parser.add_argument("--replay-share", type=float, default=0.5,
                        help="share of the training set that is replay (general questions "
                        "answered by the base), to keep its other skills")
    args = parser.parse_args()
    train, bench = generate(args.train, args.bench, args.seed)
    if args.replay.exists():
        replay = [json.loads(x) for x in args.replay.read_text(encoding="utf-8").splitlines()
                  if x.strip()]
        train = mix_replay(train, replay, args.replay_share, random.Random(args.seed))
    _write(root / "training" / "dataset.jsonl", train)
    _write(root / "eval" / "benchmark.jsonl", bench)
    n_replay = sum(r.get("source") == "replay" for r in train)
    print(f"wrote {len(train)} training rows ({n_replay} replay) and {len(bench)} benchmark rows")


if __name__ == "__main__":
    main()
