"""Batching across adapters on real llama.cpp: lanes (contexts) decoding at the same time, a KV
sequence per request.

Greedy answers of requests decoded together (several adapter sets, two lanes, continuous
admission) must equal the same requests run one by one, bit for bit; sampling honours seeds;
prefixes are cached per adapter set only.
"""

from __future__ import annotations

import os
import threading

import pytest
from helpers_adapters import make_adapter

from locollm.adapter.meta import lora_gguf_path
from locollm.errors import AdapterError, RuntimeEngineError
from locollm.prompt import format_prompt
from locollm.runtime.engine import Engine, EngineConfig, GenRequest, gpu_layers, pick_threads
from locollm.runtime.generation import StopScanner, adapter_label

QUESTIONS = ["Name a colour.", "What is 47 + 35?",
             "Tom has 3 apples and gets 4 more. How many apples does he have now?",
             "What is the capital of France?"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory, shared_models):
    from helpers_adapters import locollm_env

    from locollm.models import resolve

    folder = tmp_path_factory.mktemp("sched")
    with locollm_env(folder, shared_models):
        base = resolve("gemma-3-270m")
        eng = Engine(base.gguf, EngineConfig(n_ctx=384, n_seq_max=6, lanes=2))
        for name, seed, std in (("a", 1, 0.08), ("b", 2, 0.05)):
            eng.load_adapter(name, lora_gguf_path(make_adapter(folder / name, base, std=std,
                                                               seed=seed)))
        yield eng
        eng.close()


def mixed_requests() -> list[GenRequest]:
    """Base, a, b, and a+b over prompts of different lengths and answer lengths."""
    sets = [{}, {"adapter": "a"}, {"adapter": "b"}, {"adapters": (("a", 1.0), ("b", 0.5))}]
    return [GenRequest(format_prompt(q), max_tokens=6 + 3 * (i % 3), **sets[i % 4])
            for i, q in enumerate(QUESTIONS * 2)]


def test_greedy_batched_equals_one_by_one(engine):
    requests = mixed_requests()
    alone = [engine.complete(r.prompt, max_tokens=r.max_tokens, adapter=r.adapter,
                             adapters=r.adapters) for r in requests]
    steps, done = engine.scheduler.steps, []
    together = engine.complete_batch(requests, on_done=lambda i, c: done.append(i))
    assert [c.text for c in together] == [c.text for c in alone]
    assert [c.completion_tokens for c in together] == [c.completion_tokens for c in alone]
    assert sorted(done) == list(range(len(requests)))
    assert engine.scheduler.max_batch > 1  # really decoded together
    assert all(lane.steps > 0 for lane in engine.scheduler.lanes)  # in both lanes
    # fewer decode calls than one by one: the steps were shared
    assert engine.scheduler.steps - steps < sum(c.completion_tokens for c in alone)
    assert {c.adapter for c in together} == {None, "a", "b", "a+b*0.5"}
    assert len({c.text for c in together[:4]}) == 4  # each adapter set answers differently


def test_requests_join_between_steps(engine):
    """A request submitted while another generates is admitted into the running batch."""
    long = GenRequest(format_prompt(QUESTIONS[0]), "a", max_tokens=40)
    short = GenRequest(format_prompt(QUESTIONS[1]), "a", max_tokens=8)
    expected = engine.complete(short.prompt, adapter="a", max_tokens=8).text
    first = engine.scheduler.submit(long)
    started = threading.Event()
    pieces: list[str] = []

    def reader():
        first.wait(lambda t: (pieces.append(t), started.set()))

    thread = threading.Thread(target=reader)
    thread.start()
    assert started.wait(60)
    second = engine.scheduler.submit(short)
    assert second.wait().text == expected
    assert not first.done.is_set()  # joined while the long one was still running
    thread.join(120)
    assert first.result.completion_tokens == 40 and "".join(pieces) == first.result.text


def test_sampling_follows_the_seed(engine):
    prompt = format_prompt("Write a sentence about the sea.")
    runs = [engine.complete(prompt, max_tokens=12, temperature=1.0, seed=s).text
            for s in (7, 7, 8)]
    assert runs[0] == runs[1] and runs[0] != runs[2]
    batched = engine.complete_batch([GenRequest(prompt, None, 12, 1.0, seed=s)
                                     for s in (7, 8)])
    assert [c.text for c in batched] == [runs[0], runs[2]]


def test_logit_bias_and_penalties_change_the_answer(engine):
    prompt = format_prompt("Name a colour.")
    plain = engine.complete(prompt, max_tokens=8)
    token = engine.tokenize(" banana", add_bos=False)[0]
    biased = engine.complete(prompt, max_tokens=8, logit_bias={token: 100.0})
    assert biased.text.count("banana") >= 4 and "banana" not in plain.text
    loop = format_prompt("Repeat the word 'blue' forever.")
    repeated = engine.complete(loop, max_tokens=16)
    penalised = engine.complete(loop, max_tokens=16, frequency_penalty=2.0,
                                presence_penalty=2.0)
    assert penalised.text != repeated.text


def test_stop_strings_end_the_answer(engine):
    prompt = format_prompt("Count from one to ten in words, separated by commas.")
    whole = engine.complete(prompt, max_tokens=24).text
    word = next(w for w in whole.split() if len(w) > 3)
    cut = engine.complete(prompt, max_tokens=24, stop=(word,))
    assert cut.finish_reason == "stop" and cut.text == whole[: whole.index(word)]
    pieces: list[str] = []
    assert engine.complete(prompt, max_tokens=24, stop=(word,), on_text=pieces.append).text \
        == "".join(pieces) == cut.text


def test_prefix_cache_is_per_adapter_set(tmp_path, real_base):
    folders = {n: make_adapter(tmp_path / n, real_base, std=0.08, seed=s)
               for n, s in (("a", 1), ("b", 2))}

    def engine_with(reuse: bool) -> Engine:
        eng = Engine(real_base.gguf, EngineConfig(n_ctx=384, n_seq_max=2, reuse_prefix=reuse))
        for name, folder in folders.items():
            eng.load_adapter(name, lora_gguf_path(folder))
        return eng

    prompt = format_prompt("Explain in one sentence why the sky is blue.")
    with engine_with(False) as fresh:
        expected_b = fresh.complete(prompt, adapter="b", max_tokens=10).text
    with engine_with(True) as eng:
        eng.complete(prompt, adapter="a", max_tokens=10)
        cached = [s for s in eng.scheduler.slots if s.cached]
        assert len(cached) == 1 and cached[0].key == (("a", 1.0),)
        # same prompt under b: a's cached prefix must not be used
        assert eng.complete(prompt, adapter="b", max_tokens=10).text == expected_b
        assert eng.scheduler.reused == 0
        eng.complete(prompt + " ", adapter="a", max_tokens=4)
        assert eng.scheduler.reused >= len(eng.tokenize(prompt)) - 1


def test_cancel_frees_the_slot(engine):
    ticket = engine.scheduler.submit(GenRequest(format_prompt(QUESTIONS[0]), max_tokens=300))
    ticket.cancel()
    with pytest.raises(RuntimeEngineError, match="cancelled"):
        ticket.wait()
    assert engine.scheduler.running == 0


def test_a_bad_request_fails_before_any_starts(engine):
    steps = engine.scheduler.steps
    with pytest.raises(AdapterError, match="'nope' is not loaded"):
        engine.complete_batch([GenRequest("hi"), GenRequest("hi", "nope")])
    with pytest.raises(RuntimeEngineError, match="request 1: prompt is"):
        engine.complete_batch([GenRequest("hi"), GenRequest("word " * 500)])
    assert engine.scheduler.steps == steps


def test_stop_scanner_holds_back_only_a_possible_stop():
    scanner = StopScanner(["\n### ", "<eos>"])
    assert scanner.feed("The answer") == "The answer"
    assert scanner.feed(" is 5.\n") == " is 5."  # "\n" may start "\n### "
    assert scanner.feed("#") == ""
    assert scanner.feed("## Input") == ""  # "\n### " found: cut there
    assert scanner.stopped and scanner.text == "The answer is 5."
    other = StopScanner(["<eos>"])
    assert other.feed("a <e") == "a " and other.feed("x") == "<ex" and other.flush() == ""


def test_adapter_sets_are_normalised():
    assert GenRequest("p", "a").adapter_set() == (("a", 1.0),)
    assert GenRequest("p", "a", adapters=[("b", 0.5), ("a", 1.0)]).adapter_set() == (
        ("a", 1.0), ("b", 0.5))
    assert GenRequest("p", adapters=[("a", 0.0)]).adapter_set() == ()
    assert adapter_label((("a", 1.0), ("b", 0.5))) == "a+b*0.5" and adapter_label(()) is None


def test_gpu_layers_and_threads_decisions():
    assert gpu_layers(None, gpu_offload=True) == -1
    assert gpu_layers(None, gpu_offload=False) == 0
    assert gpu_layers(12, gpu_offload=True) == 12 and gpu_layers(0, gpu_offload=True) == 0
    assert pick_threads("3", 16, 8) == 3
    assert pick_threads(None, 16, 6) == 6  # hybrid laptop: the performance cores
    assert pick_threads(None, 2, None) == 1
    assert pick_threads(None, 16, None) == 8


def test_lane_decisions():
    from locollm.runtime.context import pick_lanes
    from locollm.runtime.engine import physical_cores

    assert pick_lanes("3", 2, 1, gpu=False) == 3
    assert pick_lanes(None, 2, 1, gpu=False) == 2  # a 2-core box: two lanes of one thread
    assert pick_lanes(None, 8, 8, gpu=False) == 1  # the threads already take every core
    assert pick_lanes(None, 32, 4, gpu=False) == 2
    assert pick_lanes(None, 16, 8, gpu=True) == 1
    assert 1 <= physical_cores() <= (os.cpu_count() or 1)


def test_a_request_joins_the_lane_it_speeds_up_most():
    from locollm.runtime.scheduler import lane_gain

    a, b = (("a", 1.0),), (("b", 1.0),)
    idle, same, other = lane_gain({}, a), lane_gain({a: 1}, a), lane_gain({b: 1}, a)
    assert idle > same > other  # an idle lane, then a row in a call already made
    assert lane_gain({a: 2, b: 1}, a) > lane_gain({b: 2}, a)


def test_lanes_split_the_sequences_and_one_call_takes_one_lane(engine):
    assert len(engine.lanes) == 2 and engine.seqs_per_lane == 3
    assert [engine.lane_of(s) for s in range(6)] == [0, 0, 0, 1, 1, 1]
    prompt = engine.tokenize(format_prompt(QUESTIONS[0]))
    with pytest.raises(RuntimeEngineError, match="one lane"):
        engine.decode((), [(2, prompt, 0), (3, prompt, 0)])
    with pytest.raises(RuntimeEngineError, match="not one of the engine's"):
        engine.forget(6)
    for seq in (2, 3):  # the same row in either lane: the same logits
        engine.decode((), [(seq, prompt, 0)])
    assert (engine.row_logits(2, len(prompt) - 1) == engine.row_logits(3, len(prompt) - 1)
            ).all()
    for seq in (2, 3):
        engine.forget(seq)


def test_split_policy_picks_the_faster_way_and_rechecks():
    from locollm.runtime.scheduler import SplitPolicy

    policy = SplitPolicy(recheck=5)
    assert policy.split(1) is False  # one row: nothing to split
    assert policy.split(3) is False  # first: batch
    policy.record(3, False, 0.100)
    # no lone row measured yet: tried row by row once in `recheck` steps
    assert [policy.split(3) for _ in range(5)] == [False] * 4 + [True]
    policy.record(1, True, 0.110)  # a step of one request: the lone cost, for every width
    choices = [policy.split(3) for _ in range(10)]  # within 25%: rechecks every 5 steps
    assert choices.count(False) == 8 and choices[4] is True and choices[-1] is True
    for _ in range(5):  # row by row becomes far cheaper
        policy.record(3, True, 0.020)
    choices = [policy.split(3) for _ in range(20)]
    assert choices.count(False) == 1  # the slower way rechecked four times as seldom
    assert policy.split(2) is False  # another width: batched first, measured on its own
    for _ in range(10):  # the machine changes: batching becomes the faster way
        policy.record(3, True, 0.300)
    assert policy.split(3) is False


MANY = ["Tell me a joke.", "Name a fruit.", "Spell cat.", "Is water wet?", "Name a colour.",
        "What is 12 times 7?", "Write a haiku about the sea.", "hi", "Why is the sky blue?",
        "Count to five.", "What is a prime number?", "Say hello in French."]


def logit_gaps(eng: Engine, key, k: int) -> list[float]:
    """Per row, the largest logit change of a step of ``k`` sequences against each alone."""
    import numpy as np

    def logits(i: int):
        return eng.row_logits(0, i)

    prompts = [eng.tokenize(format_prompt(q)) for q in MANY[:k]]
    for s, p in enumerate(prompts):
        eng.decode(key, [(s, p, 0)])
    rows = [(s, [100 + 37 * s], len(p)) for s, p in enumerate(prompts)]
    alone = []
    for row in rows:
        alone.append(logits(eng.decode(key, [row])[0]))
        eng.forget(row[0], row[2])
    together = [logits(i) for i in eng.decode(key, rows)]
    for s in range(k):
        eng.forget(s)
    return [float(np.abs(a - b).max()) for a, b in zip(alone, together, strict=True)]


@pytest.fixture(scope="module", params=[None, False], ids=["repack-default", "no-repack"])
def wide_engine(request, tmp_path_factory, shared_models):
    """Twelve sequences in one lane: room for steps over the exact row limit; with the
    default weights (repacked on builds with ggml's repack kernels) and without repacking
    (the 7-row limit, as on AMX builds)."""
    from helpers_adapters import locollm_env

    from locollm.models import resolve

    folder = tmp_path_factory.mktemp("wide")
    with locollm_env(folder, shared_models):
        base = resolve("gemma-3-270m")
        eng = Engine(base.gguf, EngineConfig(n_ctx=256, n_seq_max=len(MANY), lanes=1,
                                             repack=request.param))
        eng.load_adapter("a", lora_gguf_path(make_adapter(folder / "a", base, std=0.08,
                                                          seed=1)))
        yield eng
        eng.close()


@pytest.mark.parametrize("key", [(), (("a", 1.0),)], ids=["base", "adapter"])
def test_a_step_of_up_to_exact_rows_gives_each_row_its_alone_logits(wide_engine, key):
    gaps = {k: logit_gaps(wide_engine, key, k) for k in range(2, wide_engine.exact_rows + 1)}
    for k, gap in gaps.items():
        assert gap == [0.0] * k, f"{k} rows in one call"


def test_a_lone_adapter_row_without_its_pad_row_rounds_differently(wide_engine):
    """The bad case the pad row exists for (llamafile builds): without it, adapter rows
    decoded alone get other logits than in a step with others."""
    if not wide_engine.pads_adapter_rows:
        pytest.skip("this llama.cpp multiplies LoRA rows alike at any batch size")
    wide_engine.pads_adapter_rows = False
    try:
        gaps = [max(logit_gaps(wide_engine, (("a", 1.0),), k))
                for k in range(2, min(4, wide_engine.exact_rows) + 1)]
    finally:
        wide_engine.pads_adapter_rows = True
    assert max(gaps) > 0, "lone LoRA rows are exact here: the pad row is not needed"


def test_a_pad_row_leaves_no_trace_in_its_neighbour(wide_engine):
    import llama_cpp

    if not wide_engine.pads_adapter_rows:
        pytest.skip("no pad rows on this llama.cpp")
    eng, key = wide_engine, (("a", 1.0),)
    memory = eng.lanes[0].memory
    prompts = [eng.tokenize(format_prompt(q)) for q in MANY[:2]]
    for s, p in enumerate(prompts):
        eng.decode(key, [(s, p, 0)])
    before = llama_cpp.llama_memory_seq_pos_max(memory, 1)
    eng.decode(key, [(0, [321], len(prompts[0]))])  # padded in sequence 1
    assert llama_cpp.llama_memory_seq_pos_max(memory, 1) == before == len(prompts[1]) - 1
    assert llama_cpp.llama_memory_seq_pos_max(memory, 0) == len(prompts[0])
    for s in range(2):
        eng.forget(s)


@pytest.mark.parametrize("key", [(), (("a", 1.0),)], ids=["base", "adapter"])
def test_rows_with_gaps_between_them_get_their_alone_logits_and_leave_the_gaps_as_they_were(
        wide_engine, key):
    """Rows of sequences 0, 3 and 4 in one call (0 and 2 where 3 rows is the limit): the
    sequences between get pad rows (one micro-batch), removed after the call."""
    import numpy as np

    eng = wide_engine
    at = (0, 3, 4) if eng.exact_rows >= 5 else (0, 2)

    def logits(i: int):
        return eng.row_logits(0, i)

    prompts = [eng.tokenize(format_prompt(q)) for q in MANY[:5]]
    for s, p in enumerate(prompts):
        eng.decode(key, [(s, p, 0)])
    rows = [(s, [100 + 37 * s], len(prompts[s])) for s in at]
    alone = []
    for row in rows:
        alone.append(logits(eng.decode(key, [row])[0]))
        eng.forget(row[0], row[2])
    together = [logits(i) for i in eng.decode(key, rows)]
    ends = [eng.next_position(s) - 1 for s in range(5)]
    for s in range(5):
        eng.forget(s)
    assert [float(np.abs(a - b).max()) for a, b in zip(alone, together, strict=True)] == [
        0.0] * len(at)
    assert ends == [len(p) - (s not in at) for s, p in enumerate(prompts)]


def test_the_row_check_sees_a_step_over_the_limit_change_rows(wide_engine):
    # the bad case exact_rows exists for: one call of more rows moves some rows' logits
    limit = wide_engine.exact_rows
    assert wide_engine.repacked == (limit == 3)
    for k in (limit + 1, len(MANY)):
        assert max(logit_gaps(wide_engine, (), k)) > 0, (
            f"a step of {k} rows is exact on this llama.cpp: the limit ({limit}) may be "
            f"raised")


@pytest.mark.parametrize("adapter", [None, "a"], ids=["base", "adapter"])
def test_many_greedy_requests_batched_equal_one_by_one(wide_engine, adapter):
    requests = [GenRequest(format_prompt(q), adapter=adapter, max_tokens=12) for q in MANY]
    alone = [wide_engine.complete(r.prompt, adapter=adapter, max_tokens=12).text
             for r in requests]
    wide_engine.scheduler.max_batch = 0
    together = wide_engine.complete_batch(requests)
    assert [c.text for c in together] == alone
    assert wide_engine.scheduler.max_batch > 1
    assert wide_engine.scheduler.max_batch <= wide_engine.max_rows
