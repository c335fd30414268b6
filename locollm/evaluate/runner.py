"""Benchmark runner: decode held-out items with the adapter and the base, score, compare.

Prompts use the same format as training and serving (the adapter's metadata). Every request of
an eval (benchmark and out-of-domain set, base and adapter) goes to the engine in one
:func:`~.decode.decode` call, so a batching engine keeps its batch full; each answer is scored
as it arrives (code and judge items in a small thread pool) and the progress bar shows the
running score. ``--runtime transformers`` decodes the PEFT adapter at training precision
instead, ``both`` does both, and the comparison sets the served GGUF beside training precision
(the drift). ``evaluate_one`` scores one model.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..prompt import PromptFormat, format_prompt, parse_response
from .benchmark import BenchItem, benchmark_sha256, load_benchmark
from .decode import Request, decode
from .progress import Progress
from .results import (
    BenchResult,
    Comparison,
    Drift,
    ItemResult,
    OodResult,
    build_result,
    load_result,
    pair,
)
from .scorers import AUTO, SCORER_CHOICES, Score, ScoringConfig, score_item, scorer_for
from .stats import gap_by_group
from .verdict import judge

if TYPE_CHECKING:
    from .codeexec import SandboxConfig
    from .judge import JudgeConfig

RUNTIMES = ("llama.cpp", "transformers", "both")
SLOW_SCORERS = ("code", "judge")  # scored in a thread pool, off the decoding loop
TRAINED_SUFFIX = "_transformers"  # results_transformers.json: training precision


@dataclass
class EvalOptions:
    """How an eval decodes and scores."""

    # tokens generated per answer
    max_tokens: int = 128
    # score only the first N items of the benchmark (and of the out-of-domain set)
    limit: int | None = None
    # scorer for items without evaluation_type ("auto": chosen from the reference)
    scorer: str = AUTO
    # llama.cpp (the served GGUF), transformers (training precision) or both
    runtime: str = "llama.cpp"
    # decode in batches where the engine can (False: one by one)
    batched: bool = True
    # progress bar on stderr: None draws it on a terminal only
    progress: bool | None = None
    # the LLM judge for judge items
    judge: JudgeConfig | None = None
    # code execution limits (None: the SandboxConfig defaults)
    sandbox: SandboxConfig | None = None
    # ROUGE-L F1 at which free text counts as right
    rouge_threshold: float = 0.5
    # prompts per batch of the transformers runtime
    hf_batch_size: int = 8

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"unknown runtime {self.runtime!r}",
                              fix=f"use one of {', '.join(RUNTIMES)}")
        if self.scorer not in SCORER_CHOICES:
            raise ConfigError(f"unknown scorer {self.scorer!r}",
                              fix=f"use one of {', '.join(SCORER_CHOICES)}")
        if self.max_tokens < 1 or (self.limit is not None and self.limit < 1):
            raise ConfigError("--max-tokens and --limit must be at least 1")

    def scoring(self) -> ScoringConfig:
        """The scorers' configuration."""
        return ScoringConfig(self.scorer, self.rouge_threshold, self.sandbox, self.judge)

    def settings(self, fmt: PromptFormat) -> dict:
        """What a result records of the settings (never the judge's key)."""
        judge_cfg = None if self.judge is None else {
            k: v for k, v in asdict(self.judge).items() if k != "api_key"}
        return {"max_tokens": self.max_tokens, "temperature": 0.0, "stop": list(fmt.stop),
                "prompt_format": fmt.name, "scorer": self.scorer, "limit": self.limit,
                "rouge_threshold": self.rouge_threshold, "judge": judge_cfg,
                "sandbox": None if self.sandbox is None else asdict(self.sandbox)}


@dataclass
class Run:
    """One model on one item set."""

    label: str  # progress label: "adapter", "base", "ood adapter"...
    model: str  # "base" or the adapter's name
    adapter: str | None  # the engine's adapter name (None: bare base)
    items: list[BenchItem]
    benchmark: Path
    sha256: str
    described: dict = field(default_factory=dict)  # runtime, base, adapter, settings


def preflight(items: list[BenchItem], scoring: ScoringConfig) -> None:
    """Refuse to start a run whose items need a judge when none is configured."""
    needing = [i.line for i in items if scorer_for(i, scoring) == "judge"]
    if needing and scoring.judge is None:
        raise ConfigError(f"{len(needing)} item(s) need an LLM judge (first on benchmark line "
                          f"{needing[0]})", fix="pass --judge-url URL --judge-model NAME (any "
                          "OpenAI-compatible endpoint)")


def _item_result(item: BenchItem, prompt: str, answer: str, score: Score,
                 completion) -> ItemResult:
    return ItemResult(item.line, prompt, item.reference, answer, score.scorer, score.correct,
                      score.value, score.got, score.wanted, score.detail, item.instruction,
                      item.input, item.difficulty, item.id, completion.latency_s,
                      completion.completion_tokens, score.runs)


def score_runs(engine, runs: list[Run], fmt: PromptFormat, options: EvalOptions,
               ) -> list[BenchResult]:
    """Decode every run's items in one go and score each answer as it arrives."""
    scoring = options.scoring()
    prompts = [[format_prompt(i.instruction, i.input, fmt) for i in run.items] for run in runs]
    index = [(r, k) for r, run in enumerate(runs) for k in range(len(run.items))]
    requests = [Request(prompts[r][k], runs[r].adapter, options.max_tokens, stop=fmt.stop)
                for r, k in index]
    scored: list[list[ItemResult | None]] = [[None] * len(run.items) for run in runs]
    progress = Progress({run.label: len(run.items) for run in runs}, options.progress)
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="locollm-score")
    pending: list[Future] = []

    def store(r: int, k: int, answer: str, completion, score: Score) -> None:
        scored[r][k] = _item_result(runs[r].items[k], prompts[r][k], answer, score, completion)
        progress.done(runs[r].label, score.correct)

    def on_done(i: int, completion) -> None:
        r, k = index[i]
        item = runs[r].items[k]
        answer = parse_response(completion.text, fmt)
        if scorer_for(item, scoring) in SLOW_SCORERS:
            future = pool.submit(score_item, answer, item, scoring)
            future.add_done_callback(lambda f: f.exception() or store(r, k, answer, completion,
                                                                      f.result()))
            pending.append(future)
        else:
            store(r, k, answer, completion, score_item(answer, item, scoring))

    start = time.perf_counter()
    try:
        decode(engine, requests, on_done, batched=options.batched)
        for future in pending:
            future.result()  # a judge that cannot be reached raises here
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        progress.close()
    wall = time.perf_counter() - start
    results = []
    for run, items in zip(runs, scored, strict=True):
        done = [i for i in items if i is not None]
        decoding = sum(i.seconds or 0.0 for i in done)
        # answers decoded together overlap: decode_seconds (their latencies summed) can exceed
        # the wall time of the one call every run shares
        timings = {"wall_seconds": wall, "decode_seconds": decoding,
                   "items_per_s": len(requests) / wall if wall else 0.0,
                   "tokens": sum(i.tokens or 0 for i in done), "batched": options.batched
                   and hasattr(engine, "complete_batch"), "requests_in_call": len(requests)}
        results.append(build_result(run.model, run.benchmark, run.sha256, done, wall,
                                    timings=timings, **run.described))
    return results


def _open(runtime: str, base_model: str | None, folders: list[Path], options: EvalOptions):
    """An engine for ``runtime`` and the base record results carry."""
    from ..models import resolve
    from .provenance import base_record

    if runtime == "transformers":
        from .hf_engine import TransformersEngine

        engine = TransformersEngine(base_model, folders, options.hf_batch_size)
        return engine, base_record(engine.base, runtime, engine.model_dir)
    from ..adapter.meta import load_meta
    from ..runtime.session import open_engine

    wanted = base_model or next((load_meta(f).base_model for f in folders), None)
    engine, _ = open_engine(base_model, folders)
    return engine, base_record(resolve(wanted), runtime)


def _item_sets(benchmark: Path, ood: Path | None, options: EvalOptions
               ) -> list[tuple[str, Path, list[BenchItem], str]]:
    sets = [("", benchmark, load_benchmark(benchmark, limit=options.limit),
             benchmark_sha256(benchmark))]
    if ood is not None:
        sets.append(("ood ", ood, load_benchmark(ood, limit=options.limit),
                     benchmark_sha256(ood)))
    preflight([i for _, _, items, _ in sets for i in items], options.scoring())
    return sets


def _run_models(runtime: str, folder: Path | None, base_model: str | None, fmt: PromptFormat,
                sets, options: EvalOptions, with_base: bool = True) -> dict[str, BenchResult]:
    """Base and adapter (the base alone when ``folder`` is None; the adapter alone when
    ``with_base`` is False) on each item set."""
    from ..adapter.meta import load_meta
    from .provenance import adapter_record

    meta = load_meta(folder) if folder else None
    engine, base = _open(runtime, base_model, [folder] if folder else [], options)
    adapter_info = adapter_record(meta.name, folder) if meta else None
    models = [("base", None, None)] if with_base or meta is None else []
    models += [("adapter", meta.name, adapter_info)] if meta else []
    described = {"runtime": runtime, "base": base, "settings": options.settings(fmt)}
    runs = [Run(f"{prefix}{label}", name or "base", name, items, path, sha,
                described | {"adapter": info})
            for prefix, path, items, sha in sets for label, name, info in models]
    try:
        results = score_runs(engine, runs, fmt, options)
    finally:
        engine.close()
    return {run.label: result for run, result in zip(runs, results, strict=True)}


def _stored(path: Path, fresh: BenchResult, folder: Path | None) -> tuple[BenchResult | None,
                                                                        str]:
    """A result saved earlier that scored the same items with the same adapter, or why not."""
    from .provenance import same_adapter

    if not path.exists():
        return None, f"no {path.name}"
    try:
        old = load_result(path)
    except Exception as exc:  # an unreadable old file only means no drift to show
        return None, f"{path.name} is unreadable ({exc})"
    if old.benchmark_sha256 != fresh.benchmark_sha256:
        return None, f"{path.name} was computed on another version of the benchmark"
    if [i.line for i in old.items] != [i.line for i in fresh.items]:
        return None, f"{path.name} scored other items (another --limit)"
    if old.settings.get("max_tokens") != fresh.settings.get("max_tokens"):
        return None, f"{path.name} used another --max-tokens"
    if folder is not None and same_adapter(old.adapter, folder) is False:
        return None, f"{path.name} was computed with another version of the adapter"
    return old, ""


def _drift(out: Path, served: dict, trained: dict, folder: Path) -> tuple[Drift | None, str]:
    """Served GGUF against training precision, from this run or from the other's saved files."""
    rerun = f"run `locollm eval --adapter {folder} --runtime transformers` to measure it"
    if served and trained:
        return Drift(served["adapter"], trained["adapter"], served["base"], trained["base"]), ""
    if served:
        names = (f"results{TRAINED_SUFFIX}.json", f"base_results{TRAINED_SUFFIX}.json")
        fresh = served
    else:
        names = ("results.json", "base_results.json")
        fresh = trained
        rerun = f"run `locollm eval --adapter {folder}` to measure it"
    other, why = _stored(out / names[0], fresh["adapter"], folder)
    if other is None:
        return None, f"not measured ({why}): {rerun}"
    other_base, _ = _stored(out / names[1], fresh["base"], None)
    pairs = (fresh["adapter"], other, fresh["base"], other_base) if served else \
        (other, fresh["adapter"], other_base, fresh["base"])
    return Drift(*pairs), ""


def compare(adapter_dir: str | Path, benchmark: str | Path, *, out_dir: str | Path | None = None,
            base_model: str | None = None, ood: str | Path | None = None,
            options: EvalOptions | None = None) -> Comparison:
    """Score base and adapter on ``benchmark`` (and the out-of-domain set ``ood``).

    Writes into ``out_dir`` (default: the adapter's eval/ folder): with the llama.cpp runtime
    results.json, base_results.json, ood_results.json (with ``ood``) and failures.jsonl; with
    the transformers runtime results_transformers.json and base_results_transformers.json; and
    comparison.json (gap, interval, p-value, verdict, drift).
    """
    from ..adapter.meta import load_meta
    from ..data.jsonl import write_jsonl

    options = options or EvalOptions()
    folder = Path(adapter_dir)
    fmt = load_meta(folder).fmt()
    sets = _item_sets(Path(benchmark), Path(ood) if ood else None, options)
    served: dict[str, BenchResult] = {}
    trained: dict[str, BenchResult] = {}
    if options.runtime in ("llama.cpp", "both"):
        served = _run_models("llama.cpp", folder, base_model, fmt, sets, options)
    if options.runtime in ("transformers", "both"):
        # alone, the transformers runtime gives the whole verdict, out-of-domain set included
        trained = _run_models("transformers", folder, base_model, fmt,
                              sets if not served else sets[:1], options)
    out = Path(out_dir) if out_dir else folder / "eval"
    for results, suffix in ((served, ""), (trained, TRAINED_SUFFIX)):
        if results:
            results["adapter"].save(out / f"results{suffix}.json")
            results["base"].save(out / f"base_results{suffix}.json")
    main = served or trained
    ood_result = OodResult(main["ood base"], main["ood adapter"]) if "ood base" in main else None
    if ood_result and served:
        ood_result.save(out / "ood_results.json")
    base, tuned = main["base"], main["adapter"]
    gap = pair(base, tuned)
    drift, note = _drift(out, served, trained, folder)
    result = Comparison(base, tuned, judge(gap, ood_result.gap if ood_result else None), gap,
                        gap_by_group([i.difficulty for i in base.items], base.values,
                                     tuned.values, base.verdicts, tuned.verdicts),
                        ood_result, drift, note)
    if served:
        write_jsonl(out / "failures.jsonl", (asdict(item) for item in result.failures))
    result.save(out / ("comparison.json" if served else f"comparison{TRAINED_SUFFIX}.json"))
    return result


def evaluate_one(benchmark: str | Path, output: str | Path, adapter_dir: str | Path | None = None,
                 base_model: str | None = None, options: EvalOptions | None = None
                 ) -> BenchResult:
    """Score one model (an adapter, or the base when ``adapter_dir`` is None); write ``output``."""
    from ..adapter.meta import load_meta

    options = options or EvalOptions()
    if options.runtime == "both":
        raise ConfigError("--runtime both compares two runtimes; scoring one model takes one",
                          fix="use --runtime llama.cpp or --runtime transformers")
    folder = Path(adapter_dir) if adapter_dir else None
    fmt = load_meta(folder).fmt() if folder else PromptFormat()
    sets = _item_sets(Path(benchmark), None, options)
    results = _run_models(options.runtime, folder, base_model, fmt, sets, options,
                          with_base=folder is None)
    result = results["adapter" if folder else "base"]
    result.save(output)
    return result
