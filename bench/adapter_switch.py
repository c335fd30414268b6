"""What hot-swapping adapters costs, against a no-switch baseline measured in the same process.

On the embedded Gemma 3 270M with two LoRA GGUFs (rank 16 on q/k/v/o of every layer, random
weights: the cost does not depend on what they learned), it measures

1. ``Engine.use`` alone: a real switch (apply the other adapter, reset the cache) against a
   call that changes nothing;
2. requests: the same (adapter, prompt) pairs run grouped by adapter (no switch) and
   interleaved (a switch before every request), plus the bare base for the LoRA's own cost;
3. prefix reuse: the engine resets the cache before every request so an answer never depends
   on the request before it; this is what that costs against reusing the shared prefix;
4. HTTP: the same requests through ``locollm serve``'s handler against direct engine calls.

Usage: .venv/bin/python bench/adapter_switch.py [--requests 6] [--max-tokens 8] [--rounds 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # helpers_adapters: LoRA GGUFs without training

from helpers_adapters import make_adapter, serving  # noqa: E402

from locollm.data.jsonl import load_examples  # noqa: E402
from locollm.models import resolve  # noqa: E402
from locollm.prompt import format_prompt  # noqa: E402
from locollm.runtime.session import open_runtime  # noqa: E402

MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


def prompts(n: int) -> list[str]:
    """Real prompts: the math benchmark's items in the one prompt format."""
    items = load_examples(REPO / "adapters" / "math" / "eval" / "benchmark.jsonl")[:n]
    return [format_prompt(ex.instruction, ex.input) for ex in items]


def run(engine, pairs, max_tokens: int) -> float:
    """Mean seconds per request over ``pairs`` of (adapter, prompt)."""
    start = time.perf_counter()
    for adapter, prompt in pairs:
        engine.complete(prompt, adapter=adapter, max_tokens=max_tokens)
    return (time.perf_counter() - start) / len(pairs)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_use(engine, n: int = 400) -> tuple[float, float]:
    """Seconds per real switch and per no-op ``use`` call (best of 3)."""
    engine.use("a")
    noop = min(timed(lambda: [engine.use("a") for _ in range(n)]) for _ in range(3)) / n
    switch = min(timed(lambda: [engine.use(("a", "b")[i % 2]) for i in range(n)])
                 for _ in range(3)) / n
    return switch, noop


def bench_requests(engine, texts, max_tokens: int, rounds: int) -> dict[str, tuple[float, float]]:
    """Per scenario: median seconds per request, and the median of its per-round ratio to the
    no-switch baseline run in the same round (a shared machine's load cancels out)."""
    grouped = [("a", p) for p in texts] + [("b", p) for p in texts]
    interleaved = [pair for p in texts for pair in (("a", p), ("b", p))]
    scenarios = {"grouped (no switch)": grouped, "interleaved (switch each)": interleaved,
                 "base (no adapter)": [(None, p) for p in texts] * 2,
                 "grouped, prefix reused": grouped}
    times: dict[str, list[float]] = {name: [] for name in scenarios}
    ratios: dict[str, list[float]] = {name: [] for name in scenarios}
    for r in range(rounds):
        names = list(scenarios)[r % 4:] + list(scenarios)[: r % 4]
        for name in names:
            engine.config.reuse_prefix = name == "grouped, prefix reused"
            times[name].append(run(engine, scenarios[name], max_tokens))
        engine.config.reuse_prefix = False
        for name in scenarios:
            ratios[name].append(times[name][-1] / times["grouped (no switch)"][-1])
    return {name: (statistics.median(times[name]), statistics.median(ratios[name]))
            for name in scenarios}


def bench_http(runtime, texts, max_tokens: int, rounds: int) -> tuple[float, float, float]:
    """Seconds per request through HTTP and directly, alternating request by request, and
    the median ratio of each pair."""
    with serving(runtime) as server:
        host, port = server.server_address[:2]

        def over_http(prompt: str) -> None:
            conn = http.client.HTTPConnection(host, port, timeout=120)
            conn.request("POST", "/v1/completions", json.dumps(
                {"model": "a", "prompt": prompt, "max_tokens": max_tokens}),
                {"Content-Type": "application/json"})
            conn.getresponse().read()
            conn.close()

        pairs = []
        for _ in range(rounds):
            for p in texts:
                direct = timed(lambda p=p: runtime.engine.complete(p, adapter="a",
                                                                   max_tokens=max_tokens))
                pairs.append((timed(lambda p=p: over_http(p)), direct))
    return (statistics.median(h for h, _ in pairs), statistics.median(d for _, d in pairs),
            statistics.median(h / d for h, d in pairs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6, help="distinct prompts")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    base = resolve("gemma-3-270m")
    with tempfile.TemporaryDirectory() as tmp:
        for name, seed in (("a", 1), ("b", 2)):
            make_adapter(Path(tmp) / name, base, rank=16, std=0.01, seed=seed, modules=MODULES)
        runtime = open_runtime(None, adapters_root=tmp)
        engine = runtime.engine
        texts = prompts(args.requests)
        engine.complete(texts[0], adapter="a", max_tokens=4)  # warm up
        switch, noop = bench_use(engine)
        req = bench_requests(engine, texts, args.max_tokens, args.rounds)
        http_s, direct_s, http_ratio = bench_http(runtime, texts, args.max_tokens,
                                                  args.rounds)
        runtime.close()

    print(f"adapter switch (Engine.use: apply + cache reset): {switch * 1e6:7.1f} us   "
          f"no-op use(): {noop * 1e6:5.2f} us")
    print(f"requests: {args.requests} prompts x 2 adapters, max_tokens {args.max_tokens}, "
          f"{args.rounds} rounds; median s/request, median per-round ratio to no switch")
    for name, (seconds, ratio) in req.items():
        print(f"  {name:<28} {seconds * 1e3:8.1f} ms   ratio {ratio:6.3f}")
    base_ms, no_switch_ms = req["base (no adapter)"][0], req["grouped (no switch)"][0]
    print(f"switch overhead per request: {req['interleaved (switch each)'][1] - 1:+.1%}; "
          f"LoRA applied vs bare base: {no_switch_ms / base_ms:.3f}x")
    print(f"HTTP /v1/completions {http_s * 1e3:.1f} ms vs direct engine {direct_s * 1e3:.1f} ms"
          f" per request   ratio {http_ratio:.3f}")

if __name__ == "__main__":
    main()
