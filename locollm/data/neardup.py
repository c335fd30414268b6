"""Exact and near-duplicate texts: normalised word shingles, MinHash signatures, LSH banding.

A text is normalised (NFKC, case-folded, words only, so spacing and punctuation do not count)
and cut into word 3-grams ("shingles"), each hashed stably: crc32 per word, so a result never
depends on ``PYTHONHASHSEED`` or on the order the texts come in. Texts whose normalised form is
identical are exact duplicates.

Templates are the trap of instruction data: a long shared instruction or the fixed words of a
question template would make every pair of short examples look alike. Two defences:
:func:`prompt_texts` turns an instruction that several examples share into one word, and
shingles found in more than a tenth of the texts are left out when looking for candidates.
A pair's similarity is then the smaller of its Jaccard indices with and without those
shingles, so leaving text out can hide a resemblance but never invent one.

MinHash with LSH banding proposes candidate pairs in near-linear time; every candidate's
similarity is then computed exactly from its shingle sets, so reported numbers are exact and
only recall is probabilistic: with 20 bands of 5 rows a pair at 0.8 is proposed with
probability 0.9997 (at 0.9: more than 0.999999).
"""

from __future__ import annotations

import functools
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

SHINGLE = 3
BANDS, ROWS = 20, 5
# A shingle in more than this share of the distinct texts (and in at least MIN_BOILERPLATE of
# them) is template text. The cost: a cluster of near-copies larger than this share of the
# collection hides itself (exact copies are still found, and a shared answer shows up as
# "repeated outputs").
BOILERPLATE_SHARE = 0.1
MIN_BOILERPLATE = 10
# Runs of equal band keys longer than this are compared within a sliding window only, so one
# huge bucket cannot make the search quadratic.
WINDOW = 200

_WORD = re.compile(r"\w+")
_MASK40 = (1 << 40) - 1
_rng = np.random.default_rng(20240607)  # fixed: signatures must be identical in every run
_PERM_A = _rng.integers(1, 1 << 63, BANDS * ROWS, dtype=np.uint64) | np.uint64(1)
_PERM_B = _rng.integers(0, 1 << 63, BANDS * ROWS, dtype=np.uint64)


@dataclass(frozen=True)
class Pair:
    """Two texts (by index) whose ``similarity`` reached the threshold."""

    a: int
    b: int
    similarity: float


@dataclass
class Duplicates:
    """What :func:`find_duplicates` found in one collection of texts.

    ``rep[i]`` is the first index whose normalised text equals text ``i``'s (``i`` itself when
    unique); ``pairs`` links representatives whose texts are near-duplicates.
    """

    rep: list[int]
    pairs: list[Pair]
    boilerplate: int = 0
    _members: dict[int, list[int]] = field(default_factory=dict, repr=False)

    def members(self, index: int) -> list[int]:
        """Every index with the same normalised text as ``index`` (itself included)."""
        return self._members.get(self.rep[index], [self.rep[index]])

    def exact_groups(self) -> list[list[int]]:
        """Groups of two or more identical (normalised) texts, in index order."""
        return [m for m in self._members.values() if len(m) > 1]

    def neighbours(self) -> dict[int, list[tuple[int, float]]]:
        """For each representative, its near-duplicate representatives and the similarity."""
        out: dict[int, list[tuple[int, float]]] = {}
        for p in self.pairs:
            out.setdefault(p.a, []).append((p.b, p.similarity))
            out.setdefault(p.b, []).append((p.a, p.similarity))
        return out

    @functools.cached_property
    def _near(self) -> dict[int, list[tuple[int, float]]]:
        return self.neighbours()

    def related(self, index: int) -> list[tuple[int, float]]:
        """Every other index whose text is the same (similarity 1.0) or a near-duplicate."""
        out = [(i, 1.0) for i in self.members(index) if i != index]
        for partner, sim in self._near.get(self.rep[index], []):
            out += [(i, sim) for i in self.members(partner)]
        return out

    def components(self) -> list[list[int]]:
        """Every text in exactly one group: exact and near-duplicates chained together."""
        parent = list(range(len(self.rep)))

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for i, r in enumerate(self.rep):
            parent[find(i)] = find(r)
        for p in self.pairs:
            ra, rb = find(p.a), find(p.b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        groups: dict[int, list[int]] = {}
        for i in range(len(self.rep)):
            groups.setdefault(find(i), []).append(i)
        return list(groups.values())


def words(text: str) -> list[str]:
    """The normalised words of ``text``: NFKC, case-folded, punctuation and spacing dropped."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def normalize(text: str) -> str:
    """The form two texts must share to count as exact duplicates."""
    return " ".join(words(text))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads combined word hashes over all 64 bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _shingles(docs: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Hashed shingles of every doc and the doc each belongs to (one per word, end padded)."""
    cache: dict[str, int] = {}
    flat: list[int] = []
    lengths = np.zeros(len(docs), dtype=np.int64)
    pad = [0] * (SHINGLE - 1)
    for i, ws in enumerate(docs):
        for w in ws:
            h = cache.get(w)
            if h is None:
                h = cache[w] = zlib.crc32(w.encode()) + 1
            flat.append(h)
        flat.extend(pad)
        lengths[i] = len(ws)
    h = np.asarray(flat + pad, dtype=np.uint64)
    combined = h[: len(h) - SHINGLE + 1].copy()
    for k in range(1, SHINGLE):
        combined = combined * np.uint64(0x9E3779B97F4A7C15) + h[k: len(h) - SHINGLE + 1 + k]
    # each word of a doc starts one shingle; the positions of the padding start none
    ends = np.cumsum(lengths + SHINGLE - 1) - (SHINGLE - 1)
    keep = np.ones(len(combined), dtype=bool)
    keep[(ends[:, None] + np.arange(SHINGLE - 1)).ravel()] = False
    doc_of = np.repeat(np.arange(len(docs)), lengths)
    return _mix(combined[keep]), doc_of


def _dedupe_per_doc(shingles: np.ndarray, doc_of: np.ndarray) -> tuple[np.ndarray,
                                                                        np.ndarray]:
    """Distinct shingles of each doc, grouped by doc.

    One sort of ``doc << 40 | shingle`` groups by doc and dedupes within a doc; 40 bits of
    shingle hash make a collision among a few million shingles a handful, which cannot move a
    similarity.
    """
    key = (doc_of.astype(np.uint64) << np.uint64(40)) | (shingles & np.uint64(_MASK40))
    key.sort()
    if len(key):
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
    return key & np.uint64(_MASK40), (key >> np.uint64(40)).astype(np.int64)


def _drop_boilerplate(s: np.ndarray, d: np.ndarray, n_docs: int) -> tuple[np.ndarray,
                                                                          np.ndarray, int]:
    """Leave out shingles found in more than BOILERPLATE_SHARE of the docs."""
    if not len(s):
        return s, d, 0
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    common = counts > max(MIN_BOILERPLATE, BOILERPLATE_SHARE * n_docs)
    keep = ~common[inverse]
    return s[keep], d[keep], int(common.sum())


def _signatures(s: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """MinHash signature (BANDS x ROWS values) of every doc with at least one shingle."""
    nonempty = offsets[1:] > offsets[:-1]
    sig = np.zeros((len(offsets) - 1, BANDS * ROWS), dtype=np.uint32)
    if not len(s):
        return sig
    starts = offsets[:-1][nonempty]
    for j in range(BANDS * ROWS):
        hv = ((s * _PERM_A[j] + _PERM_B[j]) >> np.uint64(32)).astype(np.uint32)
        sig[nonempty, j] = np.minimum.reduceat(hv, starts)
    return sig


def _agreement(sig: np.ndarray, pairs: np.ndarray, chunk: int = 50_000) -> np.ndarray:
    """Share of equal MinHash values per pair: an estimate of its Jaccard similarity."""
    out = np.empty(len(pairs))
    for i in range(0, len(pairs), chunk):
        part = pairs[i:i + chunk]
        out[i:i + chunk] = (sig[part[:, 0]] == sig[part[:, 1]]).mean(axis=1)
    return out


def _candidates(sig: np.ndarray, nonempty: np.ndarray, floor: float) -> np.ndarray:
    """Pairs (i < j) sharing an LSH band whose MinHash estimate is at least ``floor``.

    Filtering band by band keeps memory proportional to plausible pairs, not to every
    collision a crowded bucket produces.
    """
    idx = np.flatnonzero(nonempty)
    found = [np.zeros((0, 2), dtype=np.int64)]
    for b in range(BANDS):
        band = sig[idx, b * ROWS:(b + 1) * ROWS].astype(np.uint64)
        key = band[:, 0].copy()
        for r in range(1, ROWS):
            key = key * np.uint64(0x100000001B3) + band[:, r]
        order = np.argsort(key, kind="stable")
        k, ids = key[order], idx[order]
        for d in range(1, WINDOW + 1):
            same = k[:-d] == k[d:]
            if not same.any():
                break
            pairs = np.sort(np.stack([ids[:-d][same], ids[d:][same]], axis=1), axis=1)
            found.append(pairs[_agreement(sig, pairs) >= floor])
        found = [np.unique(np.concatenate(found), axis=0)]
    return found[0]


def _jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def find_duplicates(texts: Sequence[str], threshold: float = 0.8) -> Duplicates:
    """Find exact and near-duplicate texts.

    A pair's similarity is the smaller of two exact Jaccard indices, with and without the
    boilerplate shingles: leaving out template text can make two texts look less alike, never
    more alike than they are.

    Args:
        texts: the collection; pairs refer to indices into it.
        threshold: Jaccard similarity of the shingle sets at which two texts are
            near-duplicates (0.8 is the usual choice for "the same item, lightly edited").

    Returns:
        :class:`Duplicates` with every exact group and every near pair among representatives.
    """
    rep: list[int] = []
    members: dict[int, list[int]] = {}
    first_of: dict[str, int] = {}
    unique_words: list[list[str]] = []
    unique_index: list[int] = []
    for i, text in enumerate(texts):
        ws = words(text)
        r = first_of.setdefault(" ".join(ws), i)
        rep.append(r)
        if r == i:
            unique_words.append(ws)
            unique_index.append(i)
        else:
            members.setdefault(r, [r]).append(i)
    n = len(unique_words)
    full, full_doc = _dedupe_per_doc(*_shingles(unique_words))
    s, d, n_common = _drop_boilerplate(full, full_doc, n)
    offsets = np.searchsorted(d, np.arange(n + 1))
    full_offsets = np.searchsorted(full_doc, np.arange(n + 1))
    sig = _signatures(s, offsets)
    cand = _candidates(sig, offsets[1:] > offsets[:-1], threshold - 0.2)  # 4 sd of the estimate
    sets: dict[tuple[int, int], set[int]] = {}

    def shingle_set(i: int, boilerplate: bool) -> set[int]:
        if (i, boilerplate) not in sets:
            arr, off = (full, full_offsets) if boilerplate else (s, offsets)
            sets[i, boilerplate] = set(arr[off[i]:off[i + 1]].tolist())
        return sets[i, boilerplate]

    pairs = []
    for a, b in cand.tolist():
        sim = _jaccard(shingle_set(a, False), shingle_set(b, False))
        if sim >= threshold:
            sim = min(sim, _jaccard(shingle_set(a, True), shingle_set(b, True)))
            if sim >= threshold:
                pairs.append(Pair(unique_index[a], unique_index[b], round(sim, 4)))
    return Duplicates(rep, pairs, n_common, members)


def prompt_texts(prompts: Sequence[tuple[str, str]]) -> list[str]:
    """The texts (instruction, input) prompts are compared on.

    An instruction that several examples use with an input is a task description, not
    content: it becomes one word naming the task, so a long shared instruction cannot make
    short, different inputs look alike, and the same input under two tasks still differs.
    An example without an input is compared on its instruction.
    """
    keys = [normalize(instruction) for instruction, _ in prompts]
    shared = Counter(k for k, (_, x) in zip(keys, prompts, strict=True) if x.strip())
    out = []
    for key, (instruction, input_) in zip(keys, prompts, strict=True):
        if not input_.strip():
            out.append(instruction)
        elif shared[key] > 1:
            out.append(f"task{zlib.crc32(key.encode()):08x}\n{input_}")
        else:
            out.append(f"{instruction}\n{input_}")
    return out


def jaccard_all_pairs(texts: Sequence[str], threshold: float = 0.8) -> list[Pair]:
    """The naive baseline: exact similarity of every pair, measured the same way.

    Quadratic; used by the benchmark and the tests to measure what MinHash misses and saves.
    Identical texts are pairs here (similarity 1.0) where :func:`find_duplicates` groups them.
    """
    docs = [words(t) for t in texts]
    full, full_doc = _dedupe_per_doc(*_shingles(docs))
    unique = len({" ".join(w) for w in docs})
    s, d, _ = _drop_boilerplate(full, full_doc, unique)
    off = np.searchsorted(d, np.arange(len(docs) + 1))
    full_off = np.searchsorted(full_doc, np.arange(len(docs) + 1))
    content = [set(s[off[i]:off[i + 1]].tolist()) for i in range(len(docs))]
    everything = [set(full[full_off[i]:full_off[i + 1]].tolist()) for i in range(len(docs))]
    pairs = []
    for a in range(len(docs)):
        for b in range(a + 1, len(docs)):
            if content[a] and content[b]:
                sim = _jaccard(content[a], content[b])
                if sim >= threshold:
                    sim = min(sim, _jaccard(everything[a], everything[b]))
                    if sim >= threshold:
                        pairs.append(Pair(a, b, round(sim, 4)))
    return pairs
