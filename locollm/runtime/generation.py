"""What a generation request is and what comes back, shared by the engine and its scheduler.

:class:`GenRequest` is the request (prompt, adapter set, sampling settings), :class:`Completion`
the answer with its cost, :class:`StopScanner` cuts the generated text at the first stop string
while it streams (holding back only a tail that could still become one). No llama.cpp here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# An adapter set: (name, scale) pairs, sorted by name so equal sets compare equal; () = base.
AdapterSet = tuple[tuple[str, float], ...]


@dataclass
class GenRequest:
    """One generation request for :meth:`Engine.complete_batch` (and the server)."""

    prompt: str  # the text the model continues (already in the prompt format)
    adapter: str | None = None  # loaded adapter name; None = bare base
    max_tokens: int = 256  # most tokens to generate (cut to what the context leaves)
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0  # nucleus sampling mass (1 = off)
    stop: tuple[str, ...] = ()  # strings that end the answer (not included in it)
    seed: int | None = None  # sampling seed; None = the engine's configured seed
    # --- extensions (keep the fields above first: callers pass them positionally) ---
    # several adapters applied together with their scales; when set it replaces `adapter`
    adapters: Sequence[tuple[str, float]] = ()
    presence_penalty: float = 0.0  # OpenAI's: subtract this from a token seen in the answer
    frequency_penalty: float = 0.0  # OpenAI's: subtract this times the token's count so far
    logit_bias: Mapping[int, float] = field(default_factory=dict)  # token id -> added logit
    grammar: str | None = None  # GBNF grammar the answer must follow (llama.cpp syntax)
    time_limit_s: float | None = None  # stop generating after this long (finish "length")

    def adapter_set(self) -> AdapterSet:
        """The adapters this request runs with, normalised (scale-0 entries dropped)."""
        if self.adapters:
            merged: dict[str, float] = {}
            for name, scale in self.adapters:
                merged[name] = merged.get(name, 0.0) + float(scale)
            return tuple(sorted((n, s) for n, s in merged.items() if s != 0.0))
        return ((self.adapter, 1.0),) if self.adapter else ()


def adapter_label(adapters: AdapterSet) -> str | None:
    """How a set is named in answers: ``math``, ``math+units``, ``math*0.5``; None for base."""
    if not adapters:
        return None
    return "+".join(n if s == 1.0 else f"{n}*{s:g}" for n, s in adapters)


@dataclass
class Completion:
    """One generated answer with its cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str  # "stop" (end token or stop string) or "length"
    adapter: str | None  # the adapter set's label (None: base)
    # seconds from submission to the first generated token (queueing + prompt evaluation)
    first_token_s: float | None = None


class StopScanner:
    """Accumulates generated text and finds the first stop string in it.

    ``feed`` returns the text that is safe to show now: everything except a tail that is the
    start of a stop string (it is released once the next piece shows it is not one).
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.text = ""  # everything generated, stop string and what follows cut off
        self.emitted = 0  # characters of self.text already handed out
        self.stopped = False

    def _held(self) -> int:
        """Length of the longest tail of the text that begins some stop string."""
        best = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(self.text)), best, -1):
                if self.text.endswith(stop[:n]):
                    best = n
                    break
        return best

    def feed(self, piece: str) -> str:
        """Add ``piece``; return the newly safe text (sets :attr:`stopped` at a stop string)."""
        if self.stopped or not piece:
            return ""
        start = max(0, len(self.text) - max((len(s) for s in self.stops), default=0))
        self.text += piece
        cut = min((p for p in (self.text.find(s, start) for s in self.stops) if p != -1),
                  default=-1)
        if cut != -1:
            self.text = self.text[:cut]
            self.stopped = True
            return self.flush()
        safe = len(self.text) - self._held()
        out = self.text[self.emitted:safe]
        self.emitted = max(self.emitted, safe)
        return out

    def flush(self) -> str:
        """Everything not yet handed out (the answer is over)."""
        out = self.text[self.emitted:]
        self.emitted = len(self.text)
        return out
