"""Reading loss curves (the guide's four patterns), the progress display and the loss plot."""

from __future__ import annotations

import io
import math

import pytest

from locollm.train.diagnosis import REMEDIES, diagnose, log_section
from locollm.train.monitor import History, Progress, step_record
from locollm.train.plot import plot_loss, smooth


def history(train: list[float], evals: dict[int, float] | None = None) -> History:
    return History(train=[{"step": i + 1, "loss": x, "lr": 1e-4, "tokens": 100}
                          for i, x in enumerate(train)],
                   eval=[{"step": s, "loss": x} for s, x in (evals or {}).items()],
                   seconds=10.0, total_tokens=100 * len(train), answer_tokens=40 * len(train))


def decaying(n: int, start: float = 2.5, end: float = 0.6) -> list[float]:
    return [end + (start - end) * math.exp(-4 * i / n) for i in range(n)]


def test_steady_fall_is_healthy():
    d = diagnose(history(decaying(60), {1: 2.4, 20: 1.1, 40: 0.8, 60: 0.7}))
    assert d.verdict == "healthy"
    assert d.numbers["loss_start"] > 2 and d.numbers["loss_end"] < 0.8
    assert d.remedy == REMEDIES["healthy"]


def test_rising_eval_while_train_falls_is_overfitting():
    d = diagnose(history(decaying(60, end=0.1), {1: 2.4, 15: 1.0, 30: 0.9, 45: 1.2, 60: 1.5}))
    assert d.verdict == "overfitting"
    assert d.numbers["eval_best_step"] == 30 and d.numbers["eval_last"] == 1.5
    assert "step 30" in d.reason and "fewer epochs" in d.remedy


def test_flat_loss_is_underfitting():
    d = diagnose(history([2.0 - 0.002 * i for i in range(50)]))
    assert d.verdict == "underfitting"
    assert d.numbers["relative_drop"] < 0.1 and "learning rate" in d.remedy


def test_repeated_spikes_are_unstable():
    losses = decaying(60)
    for i in (15, 30, 45):
        losses[i] *= 3
    d = diagnose(history(losses))
    assert d.verdict == "unstable" and d.numbers["spikes"] == 3
    assert d.numbers["spike_steps"] == [16, 31, 46] and "reduce the learning rate" in d.remedy


def test_noise_near_zero_loss_is_not_a_spike():
    """The demo run: 1.4 -> 0.01 with batch noise (0.008, 0.016, ...) late in training."""
    losses = decaying(60, start=1.4, end=0.01)
    for i in range(40, 60, 3):
        losses[i] = 0.02 if i % 2 else 0.008
    d = diagnose(history(losses))
    assert d.numbers["spikes"] == 0
    assert d.verdict == "healthy"


def test_non_finite_loss_is_unstable():
    losses = decaying(20)
    losses[7] = float("nan")
    d = diagnose(history(losses))
    assert d.verdict == "unstable" and d.numbers["first_non_finite_step"] == 8


def test_a_few_steps_are_too_short_to_judge():
    assert diagnose(history([2.0, 1.9, 1.8])).verdict == "too short"


def test_log_section_carries_the_numbers():
    h = history(decaying(30), {1: 2.4, 30: 0.9})
    text = log_section(diagnose(h), h, {"date": "2026-11-25 10:00 UTC", "Backend": "peft"})
    assert text.startswith("## Training run 2026-11-25 10:00 UTC\n")
    assert "- Backend: peft" in text and "**Diagnosis: healthy**" in text
    assert "300 tokens/s" in text and "- relative_drop:" in text


def test_progress_lines_show_loss_tokens_per_second_and_eta():
    out = io.StringIO()
    progress = Progress(stream=out, every=5)
    for step in range(1, 11):
        record = step_record(step, 20, 1.0 / step, 1e-4, 200, elapsed=step * 2.0)
        if step == 7:
            record["eval_loss"] = 0.5
        progress(record)
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["1/20", "5/20", "7/20", "10/20"]
    assert "eval 0.500" in lines[2]
    assert "100 tok/s" in lines[-1] and "eta 0m20s" in lines[-1]  # 10 steps left at 2 s/step


def test_progress_eta_after_resume_counts_only_this_session():
    out = io.StringIO()
    Progress(stream=out, every=1)(step_record(41, 50, 0.5, 1e-4, 100, elapsed=3.0,
                                              start_step=40))
    assert "eta 0m27s" in out.getvalue()  # 9 steps left at 3 s/step, not 3/41 s/step


def test_tokens_per_second_leaves_out_held_out_evaluation():
    out = io.StringIO()
    Progress(stream=out, every=1)(step_record(1, 9, 0.5, 1e-4, 300, elapsed=5.0,
                                              eval_seconds=2.0))
    assert "100 tok/s" in out.getvalue()  # 300 tokens in 5 - 2 training seconds
    h = history([1.0] * 6)
    h.eval_seconds = 4.0
    assert h.tokens_per_second == 600 / 6.0


def test_progress_bar_on_a_terminal():
    out = io.StringIO()
    progress = Progress(stream=out, bar=True)
    for step in range(1, 4):
        progress(step_record(step, 3, 1.0, 1e-4, 50, elapsed=float(step)))
    progress.close()
    assert "3/3" in out.getvalue() and "tok/s" in out.getvalue()


def test_loss_plot_is_a_png(tmp_path):
    h = history(decaying(40), {1: 2.4, 20: 1.0, 40: 0.8})
    h.resumed_at = [20]
    path = plot_loss(h, tmp_path / "loss.png", title="math")
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 5000
    assert not list(tmp_path.glob(".*"))  # written atomically, no temp file left


@pytest.mark.parametrize("window, expected", [(1, [1, 3, 5]), (2, [1, 2, 4])])
def test_smooth_is_a_trailing_mean(window, expected):
    assert smooth([1.0, 3.0, 5.0], window) == expected
