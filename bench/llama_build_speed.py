"""Generation speed of the portable llama.cpp build against the native one, on this machine.

`make setup` builds llama-cpp-python with GGML_NATIVE=OFF and the CPU's own ISA flags, AMX off
(locollm/llama_build.py). This measures what that costs against the ``GGML_NATIVE=ON`` build
pip would make, where both run. Both wheels come from the locollm wheel cache (the native one
is compiled on first use, 5-20 minutes) and are installed side by side with ``pip --target``.

One process cannot load two builds of the same library, so each round runs both builds in
their own child process, one after the other in alternating order, on the same GGUF, prompt,
threads and tokens; the ratio is taken per round and its median printed. Speed is given per
wall second and per CPU second of the process (one thread: the CPU time is the work done, and
time spent waiting for a core on a shared machine does not count against either build).
Each child also reports its build flags, and the two must produce the same greedy text.

``--baseline no-llamafile`` compares instead with the same portable flags plus
``-DGGML_LLAMAFILE=OFF`` (measured: decode 0.97x, prefill 0.60x of the default build, and no
batching gain: ``bench/batch_decode.py``); prefill speed (one ~280-token prompt) is printed too.

Usage: .venv/bin/python bench/llama_build_speed.py [--rounds 5] [--tokens 64]
       [--baseline native|no-llamafile]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from locollm import llama_build  # noqa: E402
from locollm.models import resolve  # noqa: E402

CHILD = r"""
import json, sys, time
import llama_cpp
from llama_cpp import Llama
path, tokens, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = Llama(path, n_ctx=512, n_threads=threads, n_threads_batch=threads, verbose=False)
prompt = "Question: Maya has 38 shells and gets 47 more. How many shells does she have?\nAnswer:"
llm.create_completion(prompt, max_tokens=4, temperature=0.0)  # warm up
best, best_cpu = 0.0, 0.0
for _ in range(3):
    llm.reset()
    start, cpu = time.perf_counter(), time.process_time()
    out = llm.create_completion(prompt, max_tokens=tokens, temperature=0.0)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    n = out["usage"]["completion_tokens"]
    best, best_cpu = max(best, n / seconds), max(best_cpu, n / cpu_seconds)
long = llm.tokenize((prompt + " ") .encode() * 12)  # prefill: one long prompt, no answer
prefill = 0.0
for _ in range(3):
    llm.reset()
    start = time.process_time()
    llm.eval(long)
    prefill = max(prefill, len(long) / (time.process_time() - start))
print(json.dumps({"tokens_per_second": best, "tokens_per_cpu_second": best_cpu,
                  "prefill_per_cpu_second": prefill,
                  "text": out["choices"][0]["text"],
                  "info": llama_cpp.llama_print_system_info().decode()}))
"""


def install(args: list[str], name: str) -> Path:
    """A target folder holding the llama-cpp-python built with ``args``."""
    wheel = llama_build.build_wheel(sys.executable, args, llama_build.LLAMA_CPP_PYTHON)
    target = llama_build.wheel_cache() / f"target-{name}-{wheel.parent.name}"
    if not (target / "llama_cpp").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                        str(target), str(wheel)], check=True)
    return target


def measure(target: Path, gguf: Path, tokens: int, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(target))  # this build shadows the venv's
    proc = subprocess.run([sys.executable, "-c", CHILD, str(gguf), str(tokens), str(threads)],
                          capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--baseline", choices=("native", "no-llamafile"), default="native",
                        help="compare with the native build, or with the portable flags plus "
                             "-DGGML_LLAMAFILE=OFF (exact batched LoRA rows, slower prefill)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("LOCOLLM_THREADS",
                                                                          "1")))
    opts = parser.parse_args()
    gguf = resolve("gemma-3-270m").gguf
    portable = llama_build.cmake_args()
    baseline = (["-DGGML_NATIVE=ON", *llama_build.COMMON] if opts.baseline == "native" else
                [*portable, "-DGGML_LLAMAFILE=OFF"])
    builds = {"portable": install(portable, "portable"),
              opts.baseline: install(baseline, opts.baseline)}
    speeds: dict[str, list[float]] = {name: [] for name in builds}
    cpu_speeds: dict[str, list[float]] = {name: [] for name in builds}
    ratios, cpu_ratios, prefill, texts, infos = [], [], [], {}, {}
    for r in range(opts.rounds):
        order = list(builds) if r % 2 == 0 else list(reversed(builds))
        got = {name: measure(builds[name], gguf, opts.tokens, opts.threads) for name in order}
        for name, result in got.items():
            if "error" in result:
                print(f"{name} build failed on this machine: {result['error']}")
                return 1
            speeds[name].append(result["tokens_per_second"])
            cpu_speeds[name].append(result["tokens_per_cpu_second"])
            texts[name], infos[name] = result["text"], result["info"].strip()
        prefill.append(got["portable"]["prefill_per_cpu_second"]
                       / got[opts.baseline]["prefill_per_cpu_second"])
        for key, into in (("tokens_per_second", ratios), ("tokens_per_cpu_second", cpu_ratios)):
            into.append(got["portable"][key] / got[opts.baseline][key])
    for name in builds:
        print(f"{name:>9}: {statistics.median(speeds[name]):6.1f} tokens/s, "
              f"{statistics.median(cpu_speeds[name]):6.1f} tokens/CPU-s (median of "
              f"{opts.rounds}; {opts.tokens} tokens, {opts.threads} thread(s))  {infos[name]}")
    for label, values in (("wall", ratios), ("CPU", cpu_ratios)):
        print(f"portable / {opts.baseline} generation speed ({label} time): "
              f"{statistics.median(values):.3f}x (per-round "
              f"{', '.join(f'{x:.3f}' for x in values)}); goal >= 0.95")
    print(f"portable / {opts.baseline} prefill speed (CPU time): "
          f"{statistics.median(prefill):.3f}x (per-round {', '.join(f'{x:.3f}' for x in prefill)})")
    same = texts["portable"] == texts[opts.baseline]
    print(f"greedy text identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
