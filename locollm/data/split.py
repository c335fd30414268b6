"""``locollm data split``: a train / benchmark split that is contamination-free by construction.

Examples whose prompts are exact or near-duplicates (the same test ``locollm data check`` runs
for contamination, on the same texts) are chained into groups, and a whole group goes to one
side. Groups are shuffled with the seed, so the same input and seed always give the same two
files, byte for byte. When the examples carry a ``difficulty``, the benchmark takes each level
in the proportion it has in the input, so a skewed draw cannot hide a weak level.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .jsonl import Example, load_examples, write_jsonl
from .neardup import find_duplicates, prompt_texts


@dataclass
class SplitResult:
    """Sizes of the two sides and how many near-duplicate groups were kept whole."""

    train: Path
    benchmark: Path
    n_train: int
    n_benchmark: int
    groups_kept_whole: int
    largest_group: int
    benchmark_levels: dict[str, int]


def _level(group: list[Example]) -> str:
    levels = Counter(str(e.extra.get("difficulty", "")) for e in group)
    return levels.most_common(1)[0][0]


def _targets(groups: list[list[Example]], size: int) -> dict[str, int]:
    """How many benchmark examples each difficulty level should get (largest remainder)."""
    counts = Counter()
    for g in groups:
        counts[_level(g)] += len(g)
    total = sum(counts.values())
    exact = {k: size * v / total for k, v in counts.items()}
    target = {k: int(x) for k, x in exact.items()}
    for k in sorted(exact, key=lambda k: (target[k] - exact[k], k))[:size - sum(target.values())]:
        target[k] += 1
    return target


def split_dataset(source: str | Path, train_out: str | Path, bench_out: str | Path, *,
                  bench_size: int | None = None, bench_fraction: float = 0.1, seed: int = 0,
                  threshold: float = 0.8) -> SplitResult:
    """Split ``source`` into training and benchmark JSONL files.

    Args:
        source: the full JSONL pool.
        train_out: where the training side is written.
        bench_out: where the benchmark side is written.
        bench_size: examples in the benchmark (default: ``bench_fraction`` of the pool).
        bench_fraction: share of the pool for the benchmark when no size is given.
        seed: shuffle seed; the same seed gives the same files.
        threshold: Jaccard similarity at which prompts count as near-duplicates.

    Raises:
        DataError: unreadable pool, or a benchmark size the pool cannot give.
    """
    examples = load_examples(source)
    size = bench_size if bench_size is not None else round(len(examples) * bench_fraction)
    if not 0 < size < len(examples):
        raise DataError(f"cannot take {size} benchmark examples from {len(examples)}",
                        file=source, fix="choose --bench-size between 1 and the pool size - 1")
    dups = find_duplicates(prompt_texts([(e.instruction, e.input) for e in examples]),
                           threshold)
    groups = [[examples[i] for i in g] for g in dups.components()]
    random.Random(seed).shuffle(groups)
    target = _targets(groups, size)
    bench: list[Example] = []
    taken = Counter()
    for group in groups:
        level = _level(group)
        if taken[level] + len(group) <= target[level]:
            bench += group
            taken[level] += len(group)
    if len(bench) < size:  # groups too large for their level's share: fill from any level
        chosen = {id(e) for e in bench}
        for group in groups:
            if id(group[0]) not in chosen and len(bench) + len(group) <= size:
                bench += group
                chosen.update(id(e) for e in group)
    chosen = {id(e) for e in bench}
    train = [e for e in examples if id(e) not in chosen]
    bench.sort(key=lambda e: e.line)
    write_jsonl(train_out, (e.to_json() for e in train))
    write_jsonl(bench_out, (e.to_json() for e in bench))
    multi = [g for g in groups if len(g) > 1]
    return SplitResult(Path(train_out), Path(bench_out), len(train), len(bench), len(multi),
                       max((len(g) for g in groups), default=0),
                       dict(Counter(str(e.extra.get("difficulty", "")) for e in bench)))
