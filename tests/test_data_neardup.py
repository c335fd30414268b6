"""Near-duplicate search: agrees with the exact all-pairs baseline, stable, template-blind."""

from __future__ import annotations

import random
import subprocess
import sys
import zlib

from locollm.data.neardup import find_duplicates, jaccard_all_pairs, normalize, prompt_texts

WORDS = [f"w{i}" for i in range(400)]


def corpus(n: int, seed: int = 3) -> list[str]:
    """Random texts, with every 10th one a lightly edited copy of the one before."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        if i % 10 == 9:
            words = texts[-1].split()
            words[rng.randrange(len(words))] = "edited"
            texts.append(" ".join(words))
        else:
            texts.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 60))))
    return texts


def as_set(pairs) -> set[tuple[int, int, float]]:
    return {(min(p.a, p.b), max(p.a, p.b), p.similarity) for p in pairs}


def test_minhash_finds_what_all_pairs_finds():
    texts = corpus(400)
    exact = as_set(jaccard_all_pairs(texts, 0.8))
    found = as_set(find_duplicates(texts, 0.8).pairs)
    assert len(exact) >= 25  # the planted edits that stay above 0.8
    assert found == exact  # same pairs and the same (exact) similarities


def test_threshold_is_respected():
    texts = corpus(200)
    for threshold in (0.6, 0.9):
        pairs = find_duplicates(texts, threshold).pairs
        assert pairs and all(p.similarity >= threshold for p in pairs)
    assert len(find_duplicates(texts, 0.6).pairs) > len(find_duplicates(texts, 0.9).pairs)


def test_exact_duplicates_ignore_case_spacing_and_punctuation():
    texts = ["What is 2 + 2?", "what is 2+2", "  WHAT IS 2 + 2 !", "What is 2 + 3?"]
    dups = find_duplicates(texts)
    assert dups.exact_groups() == [[0, 1, 2]]
    assert dups.rep == [0, 0, 0, 3]
    assert normalize("Ünïcode\u00a0Text!") == normalize("ünïcode text")


def test_components_chain_exact_and_near_duplicates():
    base = "the quick brown fox jumps over the lazy dog near the quiet river bank today"
    texts = [base, base.upper(), base.replace("today", "tonight"), "something unrelated here"]
    groups = sorted(sorted(g) for g in find_duplicates(texts, 0.6).components())
    assert groups == [[0, 1, 2], [3]]


def test_shared_instruction_is_ignored_but_a_real_copy_is_not():
    instruction = ("Solve the following arithmetic word problem. Show your reasoning step by "
                   "step, then give the final answer.")
    inputs = [f"Sam has {a} apples and buys {b} more. How many now?"
              for a in range(10, 40) for b in (13, 27)]
    # compared with the instruction in full, two of these look alike because of it alone
    assert jaccard_all_pairs([f"{instruction}\n{inputs[0]}", f"{instruction}\n{inputs[1]}"])
    story = ("During the long summer holiday Priya collected 38 smooth grey pebbles on the "
             "beach and then gave 12 of them to her younger cousin Arun. How many are left?")
    inputs += [story, story.replace("grey", "white")]
    texts = prompt_texts([(instruction, x) for x in inputs])
    assert texts[0] == f"task{zlib.crc32(normalize(instruction).encode()):08x}\n{inputs[0]}"
    dups = find_duplicates(texts, 0.8)
    assert [(p.a, p.b) for p in dups.pairs] == [(len(texts) - 2, len(texts) - 1)]


def test_boilerplate_never_makes_a_pair_more_alike():
    """b takes two values, so its shingles are template text; the pair still differs by b."""
    texts = [f"Sam has {a} apples and buys {b} more. How many now?"
             for a in range(10, 60) for b in (13, 27)]
    dups = find_duplicates(texts, 0.6)
    assert dups.boilerplate > 0
    assert all(p.similarity < 1.0 for p in dups.pairs)
    assert as_set(dups.pairs) == as_set(jaccard_all_pairs(texts, 0.6))


def test_prompt_texts_keep_unique_instructions_and_empty_inputs_whole():
    texts = prompt_texts([("Write a haiku about rain.", ""), ("Translate.", "Good morning"),
                          ("Translate.", "Good night"), ("Summarise this.", "A long text")])
    assert texts[0] == "Write a haiku about rain." and texts[3] == "Summarise this.\nA long text"
    assert texts[1].startswith("task") and texts[1].split("\n")[0] == texts[2].split("\n")[0]


def test_result_does_not_depend_on_order_or_hash_seed():
    texts = corpus(150)
    forward = as_set(find_duplicates(texts).pairs)
    backward = find_duplicates(texts[::-1]).pairs
    n = len(texts) - 1
    assert forward == {(min(n - p.a, n - p.b), max(n - p.a, n - p.b), p.similarity)
                       for p in backward}
    code = ("from locollm.data.neardup import find_duplicates; import sys, json; "
            "t = json.load(sys.stdin); "
            "print(sorted((p.a, p.b, p.similarity) for p in find_duplicates(t).pairs))")
    import json
    outs = {subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), text=True,
                           capture_output=True, check=True,
                           env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout
            for seed in ("1", "2")}
    assert len(outs) == 1 and outs.pop().strip() == str(sorted(forward))


def test_empty_and_tiny_inputs():
    assert find_duplicates([]).pairs == []
    dups = find_duplicates(["", "", "a"])
    assert dups.exact_groups() == [[0, 1]] and dups.pairs == []
