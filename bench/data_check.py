"""`locollm data check` on 100,000 lines, and MinHash near-duplicate search vs exact all-pairs.

Builds a synthetic dataset (templated problems under one shared instruction, mixed with free
text, with planted exact copies, near-copies and contaminated benchmark items), then prints:

  1. the wall time of the whole checklist on 100k training + 1k benchmark lines, and whether
     it found what was planted;
  2. on a subset small enough for the quadratic baseline, MinHash+LSH vs exact Jaccard of every
     pair, timed in the same run: the speed ratio and whether both find the same pairs;
  3. on the same subset with planted rewordings (another name, same numbers and answer), the
     reworded-example search (locollm.data.reworded) vs its all-pairs baseline: speed ratio,
     planted pairs found, other pairs flagged.

Run: .venv/bin/python bench/data_check.py [--lines 100000] [--subset 2000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from locollm.data.check import check_dataset
from locollm.data.neardup import find_duplicates, jaccard_all_pairs, prompt_texts, words
from locollm.data.reworded import _numbers, _similarity, _weights, find_reworded

INSTRUCTION = ("Solve the following arithmetic word problem. Show your reasoning step by step, "
               "then give the final answer.")
NAMES = ["Tom", "Ana", "Lee", "Maya", "Sam", "Nora", "Ravi", "Ella", "Omar", "Zoe"]
THINGS = ["apples", "marbles", "stickers", "books", "coins", "pencils", "cards", "shells"]
VOCAB = [f"{a}{b}" for a in ("ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "gu")
         for b in ("ban", "dor", "fel", "gim", "hus", "jor", "kel", "lim", "mur", "nox",
                   "pel", "quin", "ras", "sol", "tur")]


def make_rows(n: int, rng: random.Random) -> list[dict]:
    rows = []
    for i in range(n):
        if i % 100 == 99:  # an exact copy of an earlier row
            rows.append(dict(rows[rng.randrange(len(rows))]))
        elif i % 100 == 97:  # a near-copy of the previous row (free text: i - 1 is even)
            rows.append(near_copy(rows[-1], rng))
        elif i % 2:
            a, b = rng.randint(10, 999), rng.randint(10, 999)
            rows.append({"instruction": INSTRUCTION,
                         "input": f"{rng.choice(NAMES)} has {a} {rng.choice(THINGS)} and gets "
                                  f"{b} more on day {i}. How many now?",
                         "output": f"{a} + {b} = {a + b}\n\nThe answer is {a + b}.",
                         "difficulty": rng.choice(["easy", "medium", "hard"])})
        else:
            text = " ".join(rng.choice(VOCAB) for _ in range(rng.randint(25, 70)))
            rows.append({"instruction": "Summarise the passage in one sentence.",
                         "input": text, "output": " ".join(text.split()[:8]) + ".",
                         "difficulty": rng.choice(["easy", "medium", "hard"])})
    return rows


def near_copy(row: dict, rng: random.Random) -> dict:
    words = row["input"].split()
    words[rng.randrange(len(words))] = "edited"
    return dict(row, input=" ".join(words))


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def bench_check(lines: int, folder: Path) -> None:
    rng = random.Random(0)
    train_rows = make_rows(lines, rng)
    free = [r for r in train_rows[:400] if not r["input"].startswith(tuple(NAMES))]
    bench_rows = make_rows(1000, random.Random(1))[:980] + [dict(r) for r in train_rows[:10]] \
        + [near_copy(r, rng) for r in free[:10]]
    train = write(folder / "train.jsonl", train_rows)
    bench = write(folder / "bench.jsonl", bench_rows)
    start = time.perf_counter()
    report = check_dataset(train, bench)
    seconds = time.perf_counter() - start
    by_name = {i.name: i for i in report.items}
    print(f"data check: {lines:,} training + {len(bench_rows):,} benchmark lines "
          f"({train.stat().st_size / 1e6:.1f} MB) in {seconds:.1f} s "
          f"= {lines / seconds:,.0f} lines/s")
    for name in ("exact duplicates (training)", "near-duplicates (training)",
                 "benchmark separate from training"):
        print(f"  [{by_name[name].status}] {name}: {by_name[name].detail}")
    contaminated = by_name["benchmark separate from training"].data["contaminated"]
    print(f"  planted contaminated benchmark items: 20 (10 exact, 10 near), found: "
          f"{contaminated}")


def bench_pairs(n: int) -> None:
    rng = random.Random(2)
    texts = prompt_texts([(r["instruction"], r["input"]) for r in make_rows(n, rng)])
    start = time.perf_counter()
    fast = find_duplicates(texts, 0.8)
    t_fast = time.perf_counter() - start
    start = time.perf_counter()
    slow = jaccard_all_pairs(texts, 0.8)
    t_slow = time.perf_counter() - start
    # MinHash reports identical texts as groups and near pairs between their first members;
    # expanded, both must list the same pairs
    grouped = {(a, b) for g in fast.exact_groups() for a in g for b in g if a < b}
    near_slow = {(p.a, p.b) for p in slow} - grouped
    near_fast = {(min(a, b), max(a, b)) for p in fast.pairs for a in fast.members(p.a)
                 for b in fast.members(p.b)}
    exact_slow = {(p.a, p.b) for p in slow if p.similarity == 1.0}
    print(f"near-duplicate search on {n:,} prompts: MinHash+LSH {t_fast:.2f} s, exact "
          f"all-pairs {t_slow:.2f} s ({n * (n - 1) // 2:,} pairs) -> {t_slow / t_fast:.0f}x "
          "faster")
    print(f"  near pairs: all-pairs {len(near_slow)}, MinHash {len(near_fast)}, both "
          f"{len(near_slow & near_fast)}; identical pairs: all-pairs {len(exact_slow)}, "
          f"MinHash groups {len(grouped)}, both {len(grouped & exact_slow)}")


def reworded_all_pairs(rows: list[tuple[str, str, str]], threshold: float = 0.8) -> set:
    """Quadratic baseline of find_reworded: every pair, the same similarity and rule."""
    docs = [set(words("\n".join(r))) for r in rows]
    weight = _weights(docs)
    nums = [_numbers(f"{i}\n{x}", o) for i, x, o in rows]
    found = set()
    for a in range(len(rows)):
        for b in range(a + 1, len(rows)):
            if docs[a] == docs[b]:
                continue
            sim, bar = _similarity(docs[a], docs[b], weight), threshold
            if nums[a] == nums[b] and len(nums[a]) >= 3:
                bar = threshold * 0.5
            elif nums[a] or nums[b]:
                sa, sb = set(nums[a]), set(nums[b])
                sim = min(sim, len(sa & sb) / len(sa | sb))
            if sim >= bar:
                found.add((a, b))
    return found


def bench_reworded(n: int) -> None:
    rng = random.Random(3)
    rows = [(r["instruction"], r["input"], r["output"]) for r in make_rows(n, rng)]
    planted = set()
    for k in range(1, n, max(2, n // 20) | 1):  # odd indices are templated problems
        i, x, o = rows[k]
        if x.startswith(tuple(NAMES)):
            name = x.split()[0]
            other = next(m for m in NAMES if m != name)
            rows.append((i, x.replace(name, other, 1), o))
            planted.add((k, len(rows) - 1))
    start = time.perf_counter()
    fast = {(p.a, p.b) for p in find_reworded(rows)}
    t_fast = time.perf_counter() - start
    start = time.perf_counter()
    slow = reworded_all_pairs(rows)
    t_slow = time.perf_counter() - start
    print(f"reworded-example search on {len(rows):,} examples: indexed {t_fast:.2f} s, "
          f"all-pairs {t_slow:.2f} s -> {t_slow / t_fast:.0f}x faster")
    print(f"  planted rewordings {len(planted)}: found {len(planted & fast)} (all-pairs "
          f"{len(planted & slow)}); other pairs flagged {len(fast - planted)} (all-pairs "
          f"{len(slow - planted)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--subset", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_check(args.lines, Path(tmp))
    bench_pairs(args.subset)
    bench_reworded(args.subset)


if __name__ == "__main__":
    main()
