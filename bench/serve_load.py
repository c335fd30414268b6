"""``locollm serve`` under load: 8 concurrent clients over mixed adapters vs one by one, and
generation speed through the server vs raw llama-cpp-python, measured in the same run.

Setup: the embedded Gemma 3 270M with the shipped math adapter (its LoRA GGUF exported into a
temporary copy of the folder) and a second LoRA ("units", random weights from
tests/helpers_adapters.py: the cost does not depend on what it learned), served by the real
uvicorn server on 127.0.0.1. Requests are chat completions cycling over the base, math and
units (math benchmark questions, out-of-domain questions), greedy, ``max_tokens`` each.

1. Load: the same requests one by one (one client), then from ``--clients`` threads at once;
   throughput ratio (one-by-one time / concurrent time), p50/p99 latency of both, answers
   equal to one by one, errors. Rounds alternate the two so a shared machine's load cancels
   out; the median ratio is printed.
2. Speed: one streaming-free request at a time through the server against
   ``llama_cpp.Llama.create_completion`` on the same GGUF and thread count (tokens/s,
   alternating, median ratio).

Usage: python bench/serve_load.py [--requests 24] [--clients 8] [--max-tokens 24]
       [--rounds 2] [--fast] [--threads-batch N] [--speed-rounds 5] [--models a,b]
       (--fast: EngineConfig.batch_invariant off; --threads-batch: threads of multi-token
       decode calls, the one-by-one run gets them too for its prompts)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # helpers_adapters: LoRA GGUFs without training

from helpers_adapters import make_adapter  # noqa: E402

from locollm.data.jsonl import load_examples  # noqa: E402
from locollm.models import resolve  # noqa: E402


def workload(n: int, only: list[str] | None = None) -> list[tuple[str, str]]:
    """(model, question) pairs cycling over base, math and units (or the ``only`` ones)."""
    bench = [e.input or e.instruction for e in
             load_examples(REPO / "adapters" / "math" / "eval" / "benchmark.jsonl")]
    ood = [e.instruction for e in load_examples(REPO / "adapters" / "math" / "eval" /
                                                "ood.jsonl")]
    units = [f"Convert {5 + 3 * i} kilometres to metres." for i in range(n)]
    sources = {"gemma-3-270m": ood, "math": bench, "units": units}
    models = only or list(sources)
    k = len(models)
    return [(models[i % k], sources[models[i % k]][i // k % len(sources[models[i % k]])])
            for i in range(n)]


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_load(client, pairs, clients: int, max_tokens: int):
    """(seconds, latencies, answers by index, errors) of ``pairs`` over ``clients`` threads."""
    answers: dict[int, str] = {}
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    todo = list(enumerate(pairs))

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                i, (model, question) = todo.pop(0)
            start = time.perf_counter()
            try:
                reply = client.chat.completions.create(
                    model=model, max_tokens=max_tokens, temperature=0,
                    messages=[{"role": "user", "content": question}])
                with lock:
                    answers[i] = reply.choices[0].message.content
                    latencies.append(time.perf_counter() - start)
            except Exception as exc:  # counted and printed: the bench must show them
                with lock:
                    errors.append(exc)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, answers, errors


def speed(server_client, gguf: Path, threads: int, rounds: int) -> tuple[float, float, float]:
    """(server tok/s, raw tok/s, median ratio) for a long greedy completion of the base."""
    from llama_cpp import Llama

    from locollm.prompt import format_prompt

    prompt = format_prompt("Write a long story about a lighthouse keeper.")
    raw = Llama(str(gguf), n_ctx=1024, n_threads=threads, n_threads_batch=threads,
                verbose=False)
    pairs = []
    for _ in range(rounds):
        t = time.perf_counter()
        out = raw.create_completion(prompt, max_tokens=96, temperature=0)
        raw_rate = out["usage"]["completion_tokens"] / (time.perf_counter() - t)
        t = time.perf_counter()
        reply = server_client.completions.create(model="base", prompt=prompt, max_tokens=96)
        server_rate = reply.usage.completion_tokens / (time.perf_counter() - t)
        pairs.append((server_rate, raw_rate))
    raw.close()
    return (statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs),
            statistics.median(p[0] / p[1] for p in pairs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fast", action="store_true", help="batch_invariant off")
    parser.add_argument("--threads-batch", type=int, help="EngineConfig.n_threads_batch")
    parser.add_argument("--models", help="comma-separated subset of gemma-3-270m,math,units")
    parser.add_argument("--speed-rounds", type=int, default=5,
                        help="alternating rounds of the server-vs-raw speed comparison")
    args = parser.parse_args()

    import openai

    from locollm.runtime.engine import EngineConfig
    from locollm.runtime.server import ServeConfig, make_server
    from locollm.runtime.session import open_runtime

    base = resolve("gemma-3-270m")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "adapters"
        shutil.copytree(REPO / "adapters" / "math", root / "math",
                        ignore=shutil.ignore_patterns("*.gguf"))
        make_adapter(root / "units", base, rank=8, std=0.02, seed=5,
                     modules=("q_proj", "k_proj", "v_proj", "o_proj"))
        config = EngineConfig(n_ctx=1024, n_seq_max=args.clients,
                              batch_invariant=not args.fast,
                              n_threads_batch=args.threads_batch)
        runtime = open_runtime(None, adapters_root=root, config=config, router="keywords")
        server = make_server(runtime, config=ServeConfig(port=0, max_queue=4 * args.requests))
        server.start()
        client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=600)
        pairs = workload(args.requests, args.models.split(",") if args.models else None)
        run_load(client, pairs[:3], 3, 4)  # warm up
        ratios, seq_lat, con_lat, unequal, errors, times = [], [], [], 0, 0, []
        for r in range(args.rounds):
            order = ("seq", "con") if r % 2 == 0 else ("con", "seq")
            got = {}
            for mode in order:
                got[mode] = run_load(client, pairs, 1 if mode == "seq" else args.clients,
                                     args.max_tokens)
            (t1, lat1, ans1, err1), (t8, lat8, ans8, err8) = got["seq"], got["con"]
            ratios.append(t1 / t8)
            times.append((t1, t8))
            seq_lat += lat1
            con_lat += lat8
            errors += len(err1) + len(err8)
            unequal += sum(ans1.get(i) != ans8.get(i) for i in range(len(pairs)))
            for e in err1 + err8:
                print("error:", repr(e))
        scheduler = runtime.engine.scheduler
        threads = runtime.engine.threads
        server_rate, raw_rate, speed_ratio = speed(client, base.gguf, threads,
                                                   args.speed_rounds)
        server.shutdown()
        server.server_close()

    mode = "fast (batch_invariant off)" if args.fast else "batch-invariant (default)"
    print(f"serve_load: {args.requests} chat requests x {args.max_tokens} tokens over "
          f"{args.models or 'base, math, units'}; {args.clients} clients; {threads} thread(s), "
          f"{args.threads_batch or threads} for batches; {mode}; "
          f"llamafile matmul: {'no' if runtime.engine.exact_adapter_batches else 'yes'}")
    for (t1, t8), ratio in zip(times, ratios, strict=True):
        print(f"  round: one by one {t1:6.1f} s   {args.clients} concurrent {t8:6.1f} s   "
              f"throughput ratio {ratio:.2f}x")
    print(f"throughput ratio (median of {args.rounds}): {statistics.median(ratios):.2f}x")
    print(f"latency one by one: p50 {pct(seq_lat, .5):.2f} s  p99 {pct(seq_lat, .99):.2f} s; "
          f"concurrent: p50 {pct(con_lat, .5):.2f} s  p99 {pct(con_lat, .99):.2f} s")
    print(f"answers different from one by one: {unequal}; errors: {errors}; "
          f"most sequences in one decode call: {scheduler.max_batch}")
    print(f"generation speed: server {server_rate:.1f} tok/s vs raw llama-cpp-python "
          f"{raw_rate:.1f} tok/s, ratio {speed_ratio:.3f}")


if __name__ == "__main__":
    main()
