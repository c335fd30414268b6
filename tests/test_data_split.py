"""`locollm data split`: contamination-free by construction, seeded, reproducible."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner
from conftest import write_jsonl
from test_data_check import INSTR, problems

from locollm.cli import cli
from locollm.data.check import check_dataset
from locollm.data.split import split_dataset
from locollm.errors import DataError

STORIES = [
    "During the long summer holiday {n} collected 38 smooth grey pebbles on the beach and then "
    "gave 12 of them to a younger cousin. How many are left?",
    "The school orchestra has 24 violins, 9 cellos and 6 flutes, and this year the music "
    "teacher ordered {n} new trumpets for the brass section. How many instruments now?",
    "A delivery van leaves the depot with 140 parcels, drops 35 at the first village and {n} "
    "at the second village before lunch. How many parcels remain on the van?",
]


def pool() -> list[dict]:
    """120 distinct problems plus three clusters of near-copies (4 variants each)."""
    rows = problems(120)
    for s, story in enumerate(STORIES):
        for name in ("Priya", "Arun", "Mei", "Tariq"):
            rows.append({"instruction": INSTR, "input": story.format(n=name),
                         "output": f"The answer is {s}.", "difficulty": "hard"})
    return rows


def cluster_of(row: dict) -> int | None:
    return next((i for i, s in enumerate(STORIES) if s.split("{n}")[0] in row["input"]), None)


def lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_split_is_contamination_free_and_keeps_clusters_whole(tmp_path):
    src = write_jsonl(tmp_path / "pool.jsonl", pool())
    for seed in range(6):
        train, bench = tmp_path / f"t{seed}.jsonl", tmp_path / f"b{seed}.jsonl"
        result = split_dataset(src, train, bench, bench_size=30, seed=seed)
        assert (result.n_train, result.n_benchmark) == (102, 30)
        assert result.groups_kept_whole >= 3 and result.largest_group == 4
        sides = {}
        for side, path in (("train", train), ("bench", bench)):
            for row in lines(path):
                c = cluster_of(row)
                if c is not None:
                    sides.setdefault(c, set()).add(side)
        assert all(len(s) == 1 for s in sides.values()), (seed, sides)
        report = check_dataset(train, bench, min_train=1, min_bench=1)
        sep = next(i for i in report.items if i.name == "benchmark separate from training")
        assert sep.status == "pass", (seed, sep.problems)


def test_same_seed_same_bytes_other_seed_other_split(tmp_path):
    src = write_jsonl(tmp_path / "pool.jsonl", pool())
    outputs = []
    for run, seed in enumerate((7, 7, 8)):
        train, bench = tmp_path / f"t{run}.jsonl", tmp_path / f"b{run}.jsonl"
        split_dataset(src, train, bench, bench_fraction=0.2, seed=seed)
        outputs.append((train.read_bytes(), bench.read_bytes()))
    assert outputs[0] == outputs[1]
    assert outputs[0][1] != outputs[2][1]
    # together the two sides are the pool, each row once, in the pool's order
    train_rows, bench_rows = lines(tmp_path / "t0.jsonl"), lines(tmp_path / "b0.jsonl")
    assert sorted(map(json.dumps, train_rows + bench_rows)) == sorted(map(json.dumps, pool()))


def test_benchmark_keeps_the_difficulty_mix(tmp_path):
    rows = [dict(r, difficulty=lv) for r, lv in zip(problems(200), ["easy"] * 60 +
                                                    ["medium"] * 100 + ["hard"] * 40,
                                                    strict=True)]
    src = write_jsonl(tmp_path / "pool.jsonl", rows)
    split_dataset(src, tmp_path / "t.jsonl", tmp_path / "b.jsonl", bench_size=60, seed=3)
    mix = Counter(r["difficulty"] for r in lines(tmp_path / "b.jsonl"))
    assert mix == {"easy": 18, "medium": 30, "hard": 12}


def test_impossible_sizes_are_errors(tmp_path):
    src = write_jsonl(tmp_path / "pool.jsonl", problems(10))
    with pytest.raises(DataError, match="cannot take 10"):
        split_dataset(src, tmp_path / "t.jsonl", tmp_path / "b.jsonl", bench_size=10)
    assert not (tmp_path / "t.jsonl").exists()


def test_cli_split(tmp_path):
    src = write_jsonl(tmp_path / "pool.jsonl", pool())
    result = CliRunner().invoke(cli, ["data", "split", str(src), "--train-out",
                                      str(tmp_path / "t.jsonl"), "--bench-out",
                                      str(tmp_path / "b.jsonl"), "--bench-size", "20"])
    assert result.exit_code == 0, result.output
    assert "benchmark 20" in result.output and "kept on one side (largest 4)" in result.output
    assert len(lines(tmp_path / "b.jsonl")) == 20
