"""What a training run measured, and how it is shown while it runs.

Both backends report each optimizer step to an ``on_step`` callback as a plain dict (a *step
record*) and collect the same :class:`History`. :class:`Progress` turns step records into a
progress bar on a terminal, or into a line every few steps in a log file, showing loss, eval
loss, tokens/s and the time left.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import TextIO


@dataclass
class History:
    """What the loop measured, for metrics.json, TRAINING_LOG.md and the loss plot."""

    train: list[dict] = field(default_factory=list)  # {"step", "loss", "tokens", "lr"}
    eval: list[dict] = field(default_factory=list)  # {"step", "loss"}
    seconds: float = 0.0  # training time, summed over resumed sessions
    eval_seconds: float = 0.0  # the part of it spent on held-out loss
    answer_tokens: int = 0  # tokens that carried a label
    total_tokens: int = 0  # all non-padding tokens seen (prompt + answer)
    steps: int = 0  # optimizer steps planned
    resumed_at: list[int] = field(default_factory=list)  # steps a --resume continued from
    peak_memory_mb: float = 0.0  # peak GPU memory allocated, or peak process RSS on a CPU

    @property
    def tokens_per_second(self) -> float:
        """Non-padding training tokens per second spent training (held-out loss excluded)."""
        busy = self.seconds - self.eval_seconds
        return self.total_tokens / busy if busy > 0 else 0.0

    def to_dict(self) -> dict:
        """JSON-ready copy (metrics.json and checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> History:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (0 where the OS won't say)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def step_record(step: int, steps: int, loss: float, lr: float, tokens: int, elapsed: float,
                start_step: int = 0, eval_seconds: float = 0.0) -> dict:
    """The dict both backends pass to ``on_step`` after every optimizer step.

    ``elapsed`` counts seconds since this session started at ``start_step`` (0, or the step a
    resumed run continued from), so the ETA stays right after ``--resume``;
    ``eval_seconds`` is the part of it spent on held-out loss, left out of tokens/s.
    """
    return {"step": step, "steps": steps, "loss": loss, "lr": lr, "tokens": tokens,
            "elapsed": elapsed, "start_step": start_step, "eval_seconds": eval_seconds}


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class Progress:
    """``on_step`` callback: a progress bar on a terminal, periodic lines otherwise.

    Args:
        stream: where to write (default stderr).
        every: print a line every this many steps when not on a terminal (default: about 50
            lines per run). Eval steps and the last step are always printed.
        bar: force the bar on or off (default: on when ``stream`` is a terminal).
    """

    def __init__(self, stream: TextIO | None = None, every: int | None = None,
                 bar: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self.bar_enabled = self.stream.isatty() if bar is None else bar
        self._bar = None
        self._tokens = 0

    def describe(self, record: dict) -> str:
        """``loss 1.234  eval 1.301  lr 2.0e-04  312 tok/s  eta 3m12s`` after ``record``."""
        done = record["step"] - record.get("start_step", 0)
        elapsed = record["elapsed"]
        busy = elapsed - record.get("eval_seconds", 0.0)
        rate = self._tokens / busy if busy > 0 else 0.0
        eta = elapsed / max(done, 1) * (record["steps"] - record["step"])
        evl = f"  eval {record['eval_loss']:.3f}" if "eval_loss" in record else ""
        return (f"loss {record['loss']:.3f}{evl}  lr {record['lr']:.1e}  "
                f"{rate:.0f} tok/s  eta {_clock(eta)}")

    def __call__(self, record: dict) -> None:
        self._tokens += record.get("tokens", 0)
        text = self.describe(record)
        step, steps = record["step"], record["steps"]
        if self.bar_enabled:
            self._update_bar(record, text)
            return
        every = self.every or max(1, steps // 50)
        if step % every == 0 or step == steps or "eval_loss" in record or \
                step == record.get("start_step", 0) + 1:
            print(f"step {step:>5}/{steps}  {text}", file=self.stream, flush=True)

    def _update_bar(self, record: dict, text: str) -> None:
        from tqdm.auto import tqdm

        if self._bar is None:
            self._bar = tqdm(total=record["steps"], initial=record.get("start_step", 0),
                             file=self.stream, unit="step", dynamic_ncols=True,
                             bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}] "
                                        "{postfix}")
        self._bar.set_postfix_str(text, refresh=False)
        self._bar.update(record["step"] - self._bar.n)
        if "eval_loss" in record:
            self._bar.write(f"step {record['step']}: eval loss {record['eval_loss']:.3f}",
                            file=self.stream)

    def close(self) -> None:
        """Finish the bar (a no-op for line output)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
