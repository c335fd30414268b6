"""Reworded examples: the same problem said with a few different words.

Word 3-gram MinHash (:mod:`.neardup`) misses these on short prompts: changing two words of a
twenty-word question breaks six of its eighteen shingles. Here whole examples (instruction,
input and output) are compared as sets of words, each weighted by its inverse document
frequency, numbers counted twice and required to match: a template's fixed words weigh almost
nothing, while the numbers, names and rare words that make a problem *this* problem dominate.
Two generated problems from one template differ in exactly those, so they stay apart; a
question with a changed name or reordered clauses but the same numbers and answer does not.

Candidates come from an inverted index over each example's rarest words (prefix filtering),
so the search is near-linear; every candidate's similarity is then computed exactly. datasketch
is not used: its weighted MinHash needs dense vectors over the vocabulary, and exact weighted
Jaccard on the few candidates is both cheaper and exact.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from .neardup import Pair, words

NUMBER_WEIGHT = 2.0
PREFIX = 4          # an example is indexed under its PREFIX rarest words
MAX_BUCKET = 200    # a word shared by more examples than this is not a useful index key
# The same numbers in the same order and the same answer (at least SAME_NUMBERS of them, the
# answer included) are strong evidence on their own: such a pair needs only SAME_NUMBERS_SHARE
# of the usual word similarity, so a question reworded in several of its few words is caught.
SAME_NUMBERS = 3
SAME_NUMBERS_SHARE = 0.5
_NUMBER = re.compile(r"\d")


def _weights(docs: list[set[str]]) -> dict[str, float]:
    df = Counter(w for d in docs for w in d)
    n = len(docs)
    return {w: math.log((n + 1) / (c + 1)) * (NUMBER_WEIGHT if _NUMBER.search(w) else 1.0)
            for w, c in df.items()}


def _similarity(a: set[str], b: set[str], weight: dict[str, float]) -> float:
    union = sum(weight[w] for w in a | b)
    sim = sum(weight[w] for w in a & b) / union if union else 1.0
    return sim


def _numbers(prompt: str, output: str) -> tuple[str, ...]:
    """A problem's numbers: those of its prompt in order, then the last one of its answer
    (working steps reuse the prompt's numbers in an order a set cannot see)."""
    found = [w for w in words(prompt) if _NUMBER.search(w)]
    answer = [w for w in words(output) if _NUMBER.search(w)]
    return tuple(found + (["answer=" + answer[-1]] if answer else []))


def find_reworded(examples: Sequence[tuple[str, str, str]],
                  threshold: float = 0.8) -> list[Pair]:
    """Pairs of examples (instruction, input, output) that are one problem reworded.

    A pair's similarity is the IDF-weighted Jaccard of its words, capped by the plain Jaccard
    of its numbers (:func:`_numbers`): other numbers mean another problem. A pair with the
    same numbers in the same order and the same answer needs only half the threshold.
    Identical texts (after :func:`.neardup.words`) are skipped: exact duplicates are
    :func:`.neardup.find_duplicates`' business.
    """
    normal = [words("\n".join(e)) for e in examples]
    docs = [set(ws) for ws in normal]
    nums = [_numbers(f"{i}\n{x}", o) for i, x, o in examples]
    numsets = [set(n) for n in nums]
    weight = _weights(docs)
    df = Counter(w for d in docs for w in d)
    index: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(docs):
        keys = sorted((w for w in d if df[w] <= MAX_BUCKET), key=lambda w: (-weight[w], w))
        for w in keys[:PREFIX]:
            index[w].append(i)
        if len(nums[i]) >= SAME_NUMBERS:
            index["\0" + " ".join(nums[i])].append(i)
    seen: set[tuple[int, int]] = set()
    pairs = []
    for ids in index.values():
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                a, b = ids[x], ids[y]
                if (a, b) in seen or normal[a] == normal[b]:
                    continue
                seen.add((a, b))
                sim = _similarity(docs[a], docs[b], weight)
                if nums[a] == nums[b] and len(nums[a]) >= SAME_NUMBERS:
                    bar = threshold * SAME_NUMBERS_SHARE
                elif nums[a] or nums[b]:
                    sim = min(sim, len(numsets[a] & numsets[b]) / len(numsets[a] | numsets[b]))
                    bar = threshold
                else:
                    bar = threshold
                if sim >= bar:
                    pairs.append(Pair(a, b, round(sim, 4)))
    return sorted(pairs, key=lambda p: (p.a, p.b))
