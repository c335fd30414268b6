"""Read a finished run's loss curves the way the guide's "Monitoring Training" section does.

Four verdicts, checked in this order, each with the numbers behind it and the guide's remedy:

* **unstable**: the loss is not finite, ends above where it started, or spikes (a step's loss
  more than 1.5x the median of the steps before it, and above it by at least a quarter of the
  starting loss) again and again. The absolute floor matters near the end of a good run, where
  0.016 after a run of 0.008 is 2x but only noise;
* **overfitting**: held-out loss rose clearly after its minimum while training loss kept falling;
* **underfitting**: training loss fell by less than 10%;
* **healthy**: none of the above.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from .monitor import History

SPIKE_RATIO = 1.5  # a step this many times the recent median counts as a spike
SPIKE_WINDOW = 5  # steps in that median
SPIKE_FLOOR = 0.25  # ... and at least this fraction of the starting loss above that median
MIN_DROP = 0.10  # less relative drop than this is underfitting
EVAL_RISE = 0.05  # held-out loss this much above its minimum at the end is overfitting

REMEDIES = {
    "healthy": "Loss fell steadily and ends well below where it started. Evaluate the adapter "
               "against the base model next (locollm eval --adapter ...).",
    "overfitting": "Training loss keeps falling but held-out loss is rising: the adapter is "
                   "memorising. Use more diverse training data or fewer epochs.",
    "underfitting": "Loss barely decreased: the learning rate is probably too low, or the "
                    "training data's format doesn't match what the model expects.",
    "unstable": "Loss jumps around wildly: reduce the learning rate.",
    "too short": "Too few steps to judge the curves; train longer before reading them.",
}


@dataclass
class Diagnosis:
    """A verdict on the loss curves, the numbers that led to it, and what to do."""

    verdict: str
    reason: str
    remedy: str
    numbers: dict = field(default_factory=dict)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _spikes(losses: list[float], start: float) -> list[int]:
    """Indices whose loss exceeds SPIKE_RATIO x the median of the SPIKE_WINDOW before them,
    by more than SPIKE_FLOOR x the starting loss ``start``."""
    found = []
    for i in range(SPIKE_WINDOW, len(losses)):
        median = statistics.median(losses[i - SPIKE_WINDOW:i])
        if losses[i] > SPIKE_RATIO * median and losses[i] - median > SPIKE_FLOOR * start:
            found.append(i)
    return found


def _edges(losses: list[float]) -> tuple[float, float]:
    """Mean loss over the first and the last 10% of steps (at least one step each)."""
    k = max(1, len(losses) // 10)
    return _mean(losses[:k]), _mean(losses[-k:])


def _overfitting(history: History, numbers: dict) -> str | None:
    evals = history.eval
    if len(evals) < 3:
        return None
    best = min(evals, key=lambda e: e["loss"])
    last = evals[-1]
    numbers.update(eval_first=round(evals[0]["loss"], 4), eval_best=round(best["loss"], 4),
                   eval_best_step=best["step"], eval_last=round(last["loss"], 4))
    if best is last or last["loss"] <= best["loss"] * (1 + EVAL_RISE):
        return None
    after = [t["loss"] for t in history.train if t["step"] > best["step"]]
    at_best = [t["loss"] for t in history.train if t["step"] <= best["step"]][-SPIKE_WINDOW:]
    if not after or not at_best or _mean(after[-SPIKE_WINDOW:]) >= _mean(at_best):
        return None
    return (f"held-out loss fell to {best['loss']:.3f} at step {best['step']}, then rose to "
            f"{last['loss']:.3f} by step {last['step']} while training loss kept falling; "
            f"the best point was step {best['step']}")


def diagnose(history: History) -> Diagnosis:
    """Classify a run as healthy, overfitting, underfitting or unstable."""
    losses = [t["loss"] for t in history.train]
    if len(losses) < 5:
        return Diagnosis("too short", f"only {len(losses)} step(s) logged",
                         REMEDIES["too short"], {"steps": len(losses)})
    if not all(math.isfinite(x) for x in losses):
        bad = next(t for t in history.train if not math.isfinite(t["loss"]))
        return Diagnosis("unstable", f"the loss became {bad['loss']} at step {bad['step']}",
                         REMEDIES["unstable"], {"first_non_finite_step": bad["step"]})
    start, end = _edges(losses)
    drop = (start - end) / start if start > 0 else 0.0
    spikes = _spikes(losses, start)
    numbers = {"steps": len(losses), "loss_start": round(start, 4), "loss_end": round(end, 4),
               "relative_drop": round(drop, 4), "spikes": len(spikes)}
    if spikes:
        numbers["spike_steps"] = [history.train[i]["step"] for i in spikes[:10]]
    if end > start * 1.05:
        return Diagnosis("unstable", f"training loss ended higher than it started "
                         f"({start:.3f} -> {end:.3f})", REMEDIES["unstable"], numbers)
    if len(spikes) >= max(2, len(losses) // 20):
        return Diagnosis("unstable", f"{len(spikes)} spikes above {SPIKE_RATIO}x the recent "
                         f"median loss", REMEDIES["unstable"], numbers)
    reason = _overfitting(history, numbers)
    if reason:
        return Diagnosis("overfitting", reason, REMEDIES["overfitting"], numbers)
    if drop < MIN_DROP:
        return Diagnosis("underfitting", f"training loss fell only {drop:.0%} "
                         f"({start:.3f} -> {end:.3f})", REMEDIES["underfitting"], numbers)
    return Diagnosis("healthy", f"training loss fell {drop:.0%} ({start:.3f} -> {end:.3f})",
                     REMEDIES["healthy"], numbers)


def log_section(diagnosis: Diagnosis, history: History, facts: dict[str, str]) -> str:
    """The Markdown section appended to TRAINING_LOG.md after a run."""
    lines = [f"## Training run {facts.pop('date', '')}".rstrip(), ""]
    lines += [f"- {key}: {value}" for key, value in facts.items()]
    lines.append(f"- Time: {history.seconds:.0f} s, {history.tokens_per_second:.0f} tokens/s "
                 f"({history.total_tokens:,} tokens, {history.answer_tokens:,} with a label), "
                 f"peak memory {history.peak_memory_mb:,.0f} MiB")
    lines += ["", f"**Diagnosis: {diagnosis.verdict}**: {diagnosis.reason}.", "",
              f"Remedy (guide, Phase 3): {diagnosis.remedy}", "", "Numbers behind it:", ""]
    lines += [f"- {key}: {value}" for key, value in diagnosis.numbers.items()]
    return "\n".join(lines) + "\n"
