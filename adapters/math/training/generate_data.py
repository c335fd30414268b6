"""Deterministic arithmetic word problems for the math adapter, worked step by step.

The guide's domain, pitched at what Gemma 3 270M can learn on a CPU in minutes: money,
percentages of a quantity times a price (the guide's bakery example), division with and
without a remainder, unit rates, two- and three-step problems, three-digit results, and the
two-digit add / subtract / multiply the first adapter knew. Every problem is told through one
of many story frames (``FRAMES``: different verbs, objects, names, orders of facts, some with a
distractor number) and worked in short steps, one ``a op b = c`` per line, ending with
``The answer is N.`` (checked line by line by ``validate.py``).

The benchmark is built by ``eval/make_benchmark.py`` from its own frames, none of them here,
so the benchmark score measures transfer to new wording, not recall of a template.

Writes training/dataset.jsonl (math problems, plus the replay file mixed in when given).

Run: python adapters/math/training/generate_data.py [--train N] [--seed S]
         [--replay training/replay.jsonl --replay-share 0.25]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from locollm.data.replay import mix_replay

INSTRUCTION = ("Solve the following arithmetic word problem. Show your reasoning step by step, "
               "then give the final answer.")
NAMES = ["Tom", "Ana", "Lee", "Maya", "Sam", "Nora", "Ravi", "Ella", "Omar", "Zoe", "Kofi",
         "Lina", "Ben", "Iris", "Jun", "Priya", "Max", "Sofia", "Theo", "Amara"]
THINGS = ["apples", "marbles", "stickers", "books", "coins", "pencils", "cards", "shells",
          "stamps", "beads", "buttons", "eggs", "oranges", "toy cars", "balloons", "crayons"]
GOODS = ["muffins", "cookies", "rolls", "bagels", "pies", "scones", "cupcakes", "loaves"]
SHOPS = ["bakery", "cafe", "shop", "market stall", "corner store"]
CONTAINERS = [("box", "boxes"), ("bag", "bags"), ("jar", "jars"), ("crate", "crates"),
              ("basket", "baskets"), ("tray", "trays")]


def _split(n: int) -> tuple[int, int]:
    return n // 10 * 10, n % 10


# ------------------------------------------------------------------------ worked steps
# Each returns (steps, answer); every step is "Step k: words. a op b = c".

def _lines(*steps: str) -> str:
    return "\n".join(f"Step {i}: {s}" for i, s in enumerate(steps, 1))


def add_steps(a: int, b: int, k: int = 1) -> tuple[list[str], int]:
    """a + b, adding the tens of b then its ones (b has at most two digits)."""
    tb, ob = _split(b)
    if tb == 0 or ob == 0:
        return [f"Add. {a} + {b} = {a + b}"], a + b
    return [f"Add the tens. {a} + {tb} = {a + tb}",
            f"Add the ones. {a + tb} + {ob} = {a + b}"], a + b


def sub_steps(a: int, b: int) -> tuple[list[str], int]:
    tb, ob = _split(b)
    if tb == 0 or ob == 0:
        return [f"Subtract. {a} - {b} = {a - b}"], a - b
    return [f"Take away the tens. {a} - {tb} = {a - tb}",
            f"Take away the ones. {a - tb} - {ob} = {a - b}"], a - b


def mul_steps(a: int, b: int) -> tuple[list[str], int]:
    """a x b with b one digit: tens and ones of a (a has at most two digits)."""
    ta, oa = _split(a)
    if ta == 0 or oa == 0 or a < 10:
        return [f"Multiply. {a} x {b} = {a * b}"], a * b
    return [f"Multiply the tens. {ta} x {b} = {ta * b}",
            f"Multiply the ones. {oa} x {b} = {oa * b}",
            f"Add. {ta * b} + {oa * b} = {a * b}"], a * b


def percent_steps(p: int, q: int) -> tuple[list[str], int]:
    """p% of q, through a fraction or through 10% (q is a multiple of the needed divisor)."""
    if p in (25, 50, 75, 20):
        d = {25: 4, 50: 2, 75: 4, 20: 5}[p]
        steps = [f"{p}% is 1/{d} of {q}. {q} / {d} = {q // d}"] if p != 75 else \
            [f"25% of {q}. {q} / 4 = {q // 4}", f"75% is 3 times that. {q // 4} x 3 = {q // 4 * 3}"]
        return steps, q * p // 100
    steps = [f"10% of {q}. {q} / 10 = {q // 10}"]
    if p != 10:
        steps.append(f"{p}% of {q}. {q // 10} x {p // 10} = {q * p // 100}")
    return steps, q * p // 100


def divmod_steps(a: int, b: int) -> tuple[list[str], int, int]:
    q, r = divmod(a, b)
    return [f"Fill groups of {b}. {q} x {b} = {q * b}",
            f"Find what is left. {a} - {q * b} = {r}"], q, r


# ------------------------------------------------------------------------ problem kinds
# Each kind: rng -> (question, steps, answer, difficulty). Frames are (template, filler).

FRAMES: dict[str, list[str]] = {
    "add": [
        "{name} has {a} {thing} and gets {b} more. How many {thing} does {name} have now?",
        "A {shop} bakes {a} {goods} in the morning and {b} {goods} in the afternoon. "
        "How many {goods} does it bake in total?",
        "{name} collected {a} {thing} on Monday and {b} on Tuesday. What is the total?",
        "There are {a} {thing} in one pile and {b} in another. How many are there altogether?",
        "{name} found {b} {thing}, then {name2} gave {name} {a} more. How many {thing} does "
        "{name} have?",
        "A library had {a} books. It bought {b} new books. How many books does it have now?",
        "{name} is {a} years old. {name2} is {b} years older. How old is {name2}?",
        "A bus has {a} people on it. At the next stop {b} more get on. How many people are on "
        "the bus?",
        "A zoo has {a} birds and {b} fish. What is the number of animals in all?",
        "{name} walked {a} meters to the park and {b} meters to the shop. How far is that in "
        "all?",
        "Class A raised {a} dollars and class B raised {b} dollars. Combined, how much did "
        "they raise?",
        "What do you get when you put {a} {thing} together with {b} {thing}?",
    ],
    "sub": [
        "{name} had {a} {thing} and gave away {b}. How many {thing} are left?",
        "A {shop} baked {a} {goods} and sold {b} of them. How many {goods} are left?",
        "{name} has {a} {thing}. {name2} has {b}. How many more {thing} does {name} have?",
        "A train carries {a} people. At a station {b} get off. How many stay on the train?",
        "{name} wants to read {a} pages. {name} has read {b}. How many pages are still to go?",
        "There were {a} {thing} in a jar. {name} took out {b}. How many are in the jar now?",
        "{name} had {a} dollars and spent {b} dollars. How many dollars are left?",
        "A hotel has {a} rooms and {b} of them are booked. How many rooms are still empty?",
        "A box had {a} {thing}. {b} of them were broken and thrown out. How many remain?",
        "A road is {a} km long. {name} has driven {b} km of it. What distance is still to "
        "drive?",
        "{name} needs {a} points to win and has {b}. How many points does {name} still need?",
    ],
    "mul": [
        "A {cont} holds {a} {thing}. How many {thing} are in {b} {conts}?",
        "A {shop} puts {a} {goods} on each tray. How many {goods} are on {b} trays?",
        "{name} reads {a} pages every day for {b} days. How many pages is that?",
        "There are {b} rows of chairs with {a} chairs in each row. How many chairs are there?",
        "Each of {b} friends brings {a} {thing}. How many {thing} do they bring in all?",
        "{name} saves {a} dollars a week. How much does {name} save in {b} weeks?",
        "A spider web has {a} threads on each of its {b} sides. Find how many threads there "
        "are.",
        "{b} buses each carry {a} children to a game. What is the number of children?",
    ],
    "money": [
        "{name} buys {b} {goods} at {a} dollars each and pays with a {bill} dollar bill. "
        "How much change does {name} get?",
        "A {shop} sells {goods} for {a} dollars each. {name} buys {b} of them and hands over "
        "{bill} dollars. What is the change?",
        "{name} has {bill} dollars. {name} spends some of it on {b} tickets that cost {a} "
        "dollars each. How many dollars are left?",
    ],
    "cost": [
        "{goods_cap} cost {a} dollars each. How much do {b} {goods} cost?",
        "{name} buys {b} notebooks. Each notebook costs {a} dollars. What is the total cost?",
        "A ticket costs {a} dollars. How much do {b} tickets cost?",
        "{name} pays {a} dollars for each of {b} lessons. How much does {name} pay in all?",
    ],
    "percent_price": [
        "A {shop} sells {q} {goods} a day. {p}% of them are sold in the morning at {price} "
        "dollars each. How much money does the morning bring in?",
        "A {shop} bakes {q} {goods}. {p}% of them have chocolate. Each chocolate one sells for "
        "{price} dollars. How much do the chocolate {goods} bring in?",
        "{name} picks {q} {thing}. {p}% of them are sold for {price} dollars each. How much "
        "money is that?",
        "Out of {q} tickets, {p}% are for children. A child ticket costs {price} dollars. "
        "How much do the child tickets cost in total?",
        "{name} grows {q} pumpkins and sells {p}% of them for {price} dollars a pumpkin. "
        "How many dollars does {name} make?",
        "A team has {q} shirts to sell. It sells {p}% of them at {price} dollars per shirt. "
        "What is the money taken?",
    ],
    "percent": [
        "What is {p}% of {q}?",
        "A class has {q} students. {p}% of them walk to school. How many students walk?",
        "{name} has {q} {thing}. {p}% of them are red. How many are red?",
        "A farm has {q} animals and {p}% of them are sheep. How many sheep are there?",
    ],
    "div_exact": [
        "{name} shares {a} {thing} equally among {b} friends. How many does each friend get?",
        "{a} {goods} are packed {b} to a {cont}. How many {conts} are filled?",
        "A rope {a} meters long is cut into {b} equal pieces. How long is each piece?",
        "{a} students split into {b} equal teams. How many students are on each team?",
    ],
    "div_groups": [
        "{name} packs {a} {thing} into {conts} of {b}. How many full {conts} does {name} make?",
        "{a} {goods} go on trays that hold {b} each. How many trays are filled completely?",
        "A teacher has {a} pencils and gives {b} to each student. How many students get {b} "
        "pencils?",
    ],
    "div_rem": [
        "{name} shares {a} {thing} among {b} friends so each gets the same number. How many "
        "{thing} are left over?",
        "{a} {goods} are packed {b} to a {cont}. How many {goods} are left after filling as "
        "many {conts} as possible?",
        "{a} people sit at tables of {b}. After every full table, how many people are left "
        "standing?",
    ],
    "div_ceil": [
        "{a} people need a ride and each car takes {b}. How many cars are needed?",
        "{name} has {a} {thing} and {conts} that hold {b} each. How many {conts} does {name} "
        "need for all of them?",
        "{a} {goods} must go in {conts} of {b}. How many {conts} are needed to hold them all?",
    ],
    "rate": [
        "{n} {goods} cost {total} dollars. How much do {m} {goods} cost?",
        "{name} earns {total} dollars for {n} hours of work. How much does {name} earn in {m} "
        "hours?",
        "A machine makes {total} {thing} in {n} minutes. How many does it make in {m} minutes?",
    ],
    "speed": [
        "A car drives {total} miles in {n} hours. How many miles does it drive each hour?",
        "{name} pays {total} dollars for {n} kilograms of {thing}. What is the price of one "
        "kilogram?",
        "A pump fills {total} liters in {n} minutes. How many liters is that per minute?",
    ],
    "two_step": [
        "{name} had {a} {thing}, bought {b} more, then gave {c} away. How many are left?",
        "A {shop} baked {a} {goods} and {b} more later. It sold {c}. How many are left?",
        "{name} scored {a} points, then {b} points, then lost {c} points. What is the score?",
    ],
    "sub_mul": [
        "{name} buys {b} packs of {thing} with {a} in each pack and loses {c}. How many are "
        "left?",
        "There are {b} shelves with {a} books on each. {c} books are taken away. How many "
        "books are left?",
    ],
}


def _fill(rng: random.Random) -> dict:
    name, name2 = rng.sample(NAMES, 2)
    cont, conts = rng.choice(CONTAINERS)
    goods = rng.choice(GOODS)
    return {"name": name, "name2": name2, "thing": rng.choice(THINGS), "goods": goods,
            "goods_cap": goods.capitalize(), "shop": rng.choice(SHOPS), "cont": cont,
            "conts": conts}


# Irrelevant facts with a number, put before a fifth of the questions: the model must ignore them.
DISTRACTORS = ["{name} is {x} years old.", "It is {x} o'clock.",
               "The {shop} opened {x} years ago.", "{name} lives at number {x}."]


def _distractor(rng: random.Random, question: str, fill: dict, distractors: list[str]) -> str:
    if rng.random() > 0.2:
        return question
    return rng.choice(distractors).format(x=rng.randint(3, 40), **fill) + " " + question


def make(kind: str, rng: random.Random, frames: dict[str, list[str]] | None = None,
         distractors: list[str] | None = None) -> tuple[str, str, int, str]:
    """One problem of ``kind``: question, worked answer, answer, difficulty.

    ``frames`` and ``distractors`` replace :data:`FRAMES` and :data:`DISTRACTORS` (the
    benchmark passes its own); the numbers and the worked steps are made the same way.
    """
    frames = frames or FRAMES
    f = _fill(rng)
    frame = rng.choice(frames[kind])
    steps: list[str]
    if kind == "add":
        a, b = rng.randint(10, 89), rng.randint(10, 89)
        if rng.random() < 0.3:
            a = rng.randint(100, 899)
        steps, ans = add_steps(a, b)
        level = "easy"
    elif kind == "sub":
        a = rng.randint(40, 99) if rng.random() < 0.7 else rng.randint(100, 999)
        b = rng.randint(11, min(a - 1, 99))
        steps, ans = sub_steps(a, b)
        level = "easy"
    elif kind == "mul":
        a, b = rng.randint(11, 99), rng.randint(2, 9)
        steps, ans = mul_steps(a, b)
        level = "medium"
    elif kind in ("cost", "money"):
        a, b = rng.randint(2, 19), rng.randint(2, 9)
        steps, ans = mul_steps(a, b)
        level = "medium"
        if kind == "money":
            bill = next(x for x in (20, 50, 100, 200) if x > ans)
            f["bill"] = bill
            more, ans = sub_steps(bill, ans)
            steps = steps + more
            level = "hard"
    elif kind in ("percent", "percent_price"):
        p = rng.choice([10, 20, 25, 30, 40, 50, 60, 75])
        d = {25: 4, 75: 4, 50: 2, 20: 5}.get(p, 10)
        q = d * rng.randint(2, 30 if d == 10 else 40)
        if q * p // 100 > 99:
            q = d * rng.randint(2, 20)
        steps, ans = percent_steps(p, q)
        f.update(p=p, q=q)
        level = "medium"
        if kind == "percent_price":
            price = rng.randint(2, 9)
            f["price"] = price
            more, ans = mul_steps(ans, price)
            steps = steps + more
            level = "hard"
    elif kind == "div_exact":
        b = rng.randint(2, 9)
        ans = rng.randint(2, 12)
        a = ans * b
        steps = [f"Divide. {a} / {b} = {ans}"]
        level = "medium"
    elif kind in ("div_groups", "div_rem", "div_ceil"):
        b = rng.randint(3, 9)
        a = b * rng.randint(2, 12) + rng.randint(1, b - 1)
        steps, q, r = divmod_steps(a, b)
        if kind == "div_groups":
            steps.append(f"Count the full groups. {q * b} / {b} = {q}")
            ans = q
        elif kind == "div_rem":
            ans = r
        else:
            steps.append(f"Add one for the {r} left. {q} + 1 = {q + 1}")
            ans = q + 1
        level = "hard"
    elif kind in ("rate", "speed"):
        n, unit = rng.randint(2, 9), rng.randint(2, 12)
        total = n * unit
        f.update(n=n, total=total)
        steps = [f"Find one. {total} / {n} = {unit}"]
        ans = unit
        level = "medium"
        if kind == "rate":
            m = rng.choice([k for k in range(2, 10) if k != n])
            f["m"] = m
            steps.append(f"Multiply by {m}. {unit} x {m} = {unit * m}")
            ans = unit * m
            level = "hard"
    elif kind == "two_step":
        a, b = rng.randint(10, 60), rng.randint(10, 39)
        c = rng.randint(11, a + b - 1)
        s1, mid = add_steps(a, b)
        s2, ans = sub_steps(mid, c)
        steps = s1 + s2
        f["c"] = c
        level = "hard"
    elif kind == "sub_mul":
        a, b = rng.randint(5, 25), rng.randint(2, 9)
        s1, mid = mul_steps(a, b)
        c = rng.randint(2, min(mid - 1, 40))
        s2, ans = sub_steps(mid, c)
        steps = s1 + s2
        f["c"] = c
        level = "hard"
    else:
        raise ValueError(f"unknown kind {kind!r}")
    f.setdefault("a", locals().get("a"))
    f.setdefault("b", locals().get("b"))
    question = _distractor(rng, frame.format(**f), f, distractors or DISTRACTORS)
    return question, f"{_lines(*steps)}\n\nThe answer is {ans}.", ans, level


# How many of each kind, as a share of the set (targeted after run 1: see TRAINING_LOG.md).
# Run 2 (after run 1's failures, all add/sub/mul asked in unseen words wrong): more of the
# basic operations and of percent x price; fewer of the single-division kinds run 1 got right.
MIX: dict[str, float] = {
    "add": 0.13, "sub": 0.13, "mul": 0.10, "cost": 0.05, "money": 0.06, "percent": 0.06,
    "percent_price": 0.10, "div_exact": 0.05, "div_groups": 0.05, "div_rem": 0.06,
    "div_ceil": 0.05, "rate": 0.06, "speed": 0.03, "two_step": 0.04, "sub_mul": 0.03,
}


def generate(n: int, rng: random.Random, frames: dict[str, list[str]] | None = None,
             mix: dict[str, float] | None = None, avoid: set[str] | None = None,
             distractors: list[str] | None = None) -> list[dict]:
    """``n`` distinct problems in the kind mix, none whose question is in ``avoid``."""
    mix = mix or MIX
    seen = set(avoid or ())
    rows = []
    total = sum(mix.values())
    for kind, share in mix.items():
        want = max(1, round(n * share / total))
        tries = 0
        while want > 0 and tries < 50 * n:
            tries += 1
            q, out, _, level = make(kind, rng, frames, distractors)
            if q in seen:
                continue
            seen.add(q)
            rows.append({"instruction": INSTRUCTION, "input": q, "output": out,
                         "difficulty": level, "kind": kind})
            want -= 1
    rng.shuffle(rows)
    return rows[:n]


def build(train: int = 480, seed: int = 1234, replay: list[dict] | None = None,
          replay_share: float = 0.0) -> list[dict]:
    """The training rows: ``train`` math problems plus the replay share."""
    rng = random.Random(seed)
    rows = generate(train, rng)
    return mix_replay(rows, replay or [], replay_share, rng) if replay else rows


def main() -> None:
    here = Path(__file__).resolve().parent
    # The shipped dataset's settings (the tests rebuild it from them)
    config = json.loads((here / "data_config.json").read_text(encoding="utf-8"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=config["train"])
    parser.add_argument("--seed", type=int, default=config["seed"])
    parser.add_argument("--replay", type=Path, default=here / "replay.jsonl",
                        help="replay JSONL from `locollm data replay` (skipped if missing)")
    parser.add_argument("--replay-share", type=float, default=config["replay_share"])
    parser.add_argument("--out", type=Path, default=here / "dataset.jsonl")
    args = parser.parse_args()
    replay = []
    if args.replay.exists():
        replay = [json.loads(x) for x in args.replay.read_text(encoding="utf-8").splitlines()
                  if x.strip()]
    rows = build(args.train, args.seed, replay, args.replay_share)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(args.out)
    n_replay = sum(r.get("source") == "replay" for r in rows)
    print(f"wrote {len(rows)} examples to {args.out} ({n_replay} replay)")


if __name__ == "__main__":
    main()
