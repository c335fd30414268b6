"""The progress bar of an eval: items done, items/s and the running score of each run.

tqdm draws it on stderr (shown on a terminal, off when stderr is not one unless asked for), so
a run of several minutes is never silent and a first look at the score comes early.
"""

from __future__ import annotations

import sys
import threading


class Progress:
    """One bar over every request of an eval; ``done`` as each item is scored."""

    def __init__(self, runs: dict[str, int], enabled: bool | None = None,
                 desc: str = "eval") -> None:
        """``runs`` maps each run's label ("adapter", "base", ...) to its item count;
        ``enabled`` None draws the bar only on a terminal."""
        from tqdm import tqdm

        self._lock = threading.Lock()
        self._right = dict.fromkeys(runs, 0)
        self._seen = dict.fromkeys(runs, 0)
        self._bar = tqdm(total=sum(runs.values()), desc=desc, unit="item", file=sys.stderr,
                         disable=None if enabled is None else not enabled, leave=True,
                         dynamic_ncols=True, smoothing=0.1)

    def done(self, run: str, correct: bool) -> None:
        """One item of ``run`` scored."""
        with self._lock:
            self._seen[run] += 1
            self._right[run] += bool(correct)
            self._bar.set_postfix_str(self.running(), refresh=False)
            self._bar.update(1)

    def running(self) -> str:
        """The running score of every run started: ``adapter 12/20 60% | base 1/20 5%``."""
        return " | ".join(f"{run} {self._right[run]}/{n} {self._right[run] / n:.0%}"
                          for run, n in self._seen.items() if n)

    def close(self) -> None:
        """Leave the bar's last state on screen."""
        with self._lock:
            self._bar.close()
