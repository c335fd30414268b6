"""The loss plot written next to the weights: training loss per step and held-out loss."""

from __future__ import annotations

from pathlib import Path

from ..paths import atomic_path
from .monitor import History


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average, so a noisy per-step loss still shows its trend."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_loss(history: History, dest: str | Path, title: str = "") -> Path:
    """Write a PNG of train (raw and smoothed) and eval loss against the step; return it."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and never steal one
    import matplotlib.pyplot as plt

    steps = [t["step"] for t in history.train]
    losses = [t["loss"] for t in history.train]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    try:
        window = max(1, len(losses) // 20)
        ax.plot(steps, losses, color="tab:blue", alpha=0.3 if window > 1 else 1.0,
                linewidth=1, label="train (step)")
        if window > 1:
            ax.plot(steps, smooth(losses, window), color="tab:blue", linewidth=2,
                    label=f"train ({window}-step mean)")
        if history.eval:
            ax.plot([e["step"] for e in history.eval], [e["loss"] for e in history.eval],
                    color="tab:orange", marker="o", linewidth=2, label="held-out")
        for step in history.resumed_at:
            ax.axvline(step, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss (answer tokens)")
        ax.set_title(title or "Training loss")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        with atomic_path(dest) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return Path(dest)
