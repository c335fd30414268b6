"""The eval report as text: scores, the gap with its interval and p-value, per difficulty, the
out-of-domain check, drift between runtimes, the verdict and its reasons, the first failures.

``locollm eval`` and ``locollm score`` print these lines; programs read the JSON files instead.
"""

from __future__ import annotations

from .results import BenchResult, Comparison, Drift, ItemResult
from .stats import PairedGap, format_p


def score_text(result: BenchResult) -> str:
    """``37/60 = 61.7%`` (a mean value for graded scorers: ``mean 0.62 over 60``)."""
    if all(i.value in (0.0, 1.0) for i in result.items):
        return f"{result.correct}/{result.total} = {result.score:.1%}"
    return f"{result.score:.1%} mean ({result.correct}/{result.total} right)"


def gap_text(gap: PairedGap) -> str:
    """``+60.0 pts (95% CI +46.7 to +71.7; McNemar p < 0.0001)``."""
    return (f"{gap.points:+.1f} pts (95% CI {gap.low:+.1f} to {gap.high:+.1f}; exact McNemar "
            f"{format_p(gap.p_value)}{'' if gap.significant else ', not significant'})")


def _short_hash(result: BenchResult) -> str:
    return (result.benchmark_sha256 or "?")[:12]


def _drift_lines(drift: Drift) -> list[str]:
    rows = [("adapter", drift.served, drift.trained)]
    if drift.served_base and drift.trained_base:
        rows.append(("base", drift.served_base, drift.trained_base))
    lines = [f"drift: served GGUF (llama.cpp, {drift.served.base.get('quantization') or '?'}) "
             f"vs training precision (transformers, float32), same {drift.served.total} items",
             f"  {'':<9}{'served GGUF':>14}{'training precision':>22}"]
    for label, served, trained in rows:
        lines.append(f"  {label:<9}{served.score:>14.1%}{trained.score:>22.1%}")
    if len(rows) == 2:
        lines.append(f"  {'gap':<9}{(drift.served.score - drift.served_base.score) * 100:>+10.1f}"
                     f" pts{(drift.trained.score - drift.trained_base.score) * 100:>+18.1f} pts")
    gap = drift.gap
    lines.append(f"  the adapter's verdict differs on {drift.differing} item(s); served minus "
                 f"training precision {gap.points:+.1f} pts ({format_p(gap.p_value)})")
    return lines


def comparison_lines(cmp: Comparison, show_failures: int = 5) -> list[str]:
    """The whole report of ``locollm eval --adapter``."""
    a, b = cmp.adapter, cmp.base
    lines = [f"benchmark {a.benchmark} ({a.total} items, sha256 {_short_hash(a)}, "
             f"{a.runtime})",
             f"  base     {score_text(b)}", f"  adapter  {score_text(a)}",
             f"  gap      {gap_text(cmp.gap)}"]
    if cmp.by_difficulty:
        lines.append("  by difficulty:")
        for level, gap in cmp.by_difficulty.items():
            lines.append(f"    {level:<8} n={gap.n:<3} base {gap.a:6.1%}  adapter {gap.b:6.1%}  "
                         f"{gap_text(gap)}")
    if cmp.ood:
        o = cmp.ood
        lines += [f"out-of-domain {o.adapter.benchmark} ({o.adapter.total} items)",
                  f"  base {score_text(o.base)}, adapter {score_text(o.adapter)}: "
                  f"change {gap_text(o.gap)}"]
    else:
        lines.append("out-of-domain: not measured (no eval/ood.jsonl, no --ood)")
    lines += _drift_lines(cmp.drift) if cmp.drift else [f"drift: {cmp.drift_note}"]
    v = cmp.verdict
    lines.append(f"verdict: {v.name.upper()}")
    lines += [f"  {part}" for part in v.parts]
    lines += [f"  next: {advice}" for advice in v.advice]
    failures = cmp.failures
    if failures and show_failures:
        shown = min(show_failures, len(failures))
        lines.append(f"{len(failures)} failure(s); the first {shown} (all in "
                     f"eval/failures.jsonl):")
        lines += [f"  {item_line(item)}" for item in failures[:shown]]
    return lines


def item_line(item: ItemResult) -> str:
    """One item's verdict: line, scorer, what was expected and what was read."""
    mark = "right" if item.correct else "WRONG"
    detail = f" [{item.detail}]" if item.detail else ""
    where = f"id {item.id}" if item.id else f"line {item.line}"
    return (f"{where}: {mark} ({item.scorer}) expected {item.expected_answer!r}, got "
            f"{item.answer!r}{detail}")


def result_lines(result: BenchResult, show_items: int = 0) -> list[str]:
    """One model's score (``locollm score``, ``locollm eval --output``), by difficulty and
    scorer, then the first ``show_items`` per-item verdicts."""
    lines = [f"{result.model}: {score_text(result)} on {result.benchmark} "
             f"(sha256 {_short_hash(result)})"]
    if len(result.by_scorer) > 1:
        lines.append("  by scorer: " + ", ".join(f"{k} {v:.1%}"
                                                 for k, v in result.by_scorer.items()))
    if result.by_difficulty:
        lines.append("  by difficulty: " + ", ".join(f"{k} {v:.1%}"
                                                     for k, v in result.by_difficulty.items()))
    lines += [f"  {item_line(item)}" for item in result.items[:show_items]]
    return lines
