"""Continuous batching across adapters: many requests decoded together in llama.cpp contexts.

Each request takes a *slot* (a KV sequence of one of the engine's lanes, its llama.cpp
contexts). A worker thread per lane loops: admit the requests placed in its free slots (each
prompt evaluated in a decode call of its own, the same call it gets when run alone), then one
*step*: the lane's running sequences are grouped by adapter set and each group is decoded as
one batch with its set applied, one token per sequence. Lanes run at the same time, each at
its own pace. New requests join between steps, in the lane where they add the most tokens per
second (:func:`lane_gain`); a finished or cancelled request frees its slot at once. With
``reuse_prefix`` a free slot keeps its KV cache keyed by (adapter set, tokens), and a new
request with the same set reuses the longest shared prefix; a slot never serves another
adapter set's prefix.

Callers never run llama.cpp: they :meth:`Scheduler.submit` a :class:`GenRequest` and read the
:class:`Ticket`'s events (text pieces, then the :class:`Completion`) in their own thread, or
through a ``listener`` called by a lane's worker (the server's event loop).
"""

from __future__ import annotations

import codecs
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import RuntimeEngineError
from .generation import AdapterSet, Completion, GenRequest, StopScanner, adapter_label

if TYPE_CHECKING:
    from .engine import Engine


class QueueFull(RuntimeEngineError):
    """More requests are waiting than the scheduler accepts (the server answers 429)."""


class ShuttingDown(RuntimeEngineError):
    """The engine is closing and takes no new requests (the server answers 503)."""


class Cancelled(RuntimeEngineError):
    """The request was cancelled (its client left, or the engine closed without draining)."""


Listener = Callable[[str, Any], object]


class Ticket:
    """One submitted request: its events, its result, and a way to cancel it.

    Events are ``("text", str)`` pieces, then ``("done", Completion)`` or ``("error", exc)``.
    """

    def __init__(self, scheduler: Scheduler, request: GenRequest, tokens: list[int],
                 max_tokens: int, listener: Listener | None,
                 on_finish: Callable[[Ticket], object] | None) -> None:
        self.scheduler = scheduler
        self.request = request
        self.tokens = tokens
        self.max_tokens = max_tokens
        self.adapters: AdapterSet = request.adapter_set()
        self.listener = listener
        self.on_finish = on_finish
        self.submitted = time.perf_counter()
        self.cancelled = threading.Event()
        self.done = threading.Event()
        self.result: Completion | None = None
        self.error: BaseException | None = None
        self._events: queue.SimpleQueue = queue.SimpleQueue()

    def emit(self, kind: str, value: Any) -> None:
        """Hand one event to the listener or the queue (worker side; never raises)."""
        if kind == "done":
            self.result = value
        elif kind == "error":
            self.error = value
        try:
            if self.listener is not None:
                self.listener(kind, value)
            else:
                self._events.put((kind, value))
        except Exception:  # a closed event loop: nobody is listening any more
            pass
        if kind in ("done", "error"):
            self.done.set()
            if self.on_finish is not None:
                self.on_finish(self)

    def cancel(self) -> None:
        """Stop generating for this request (its slot frees at the next step)."""
        if not self.done.is_set():
            self.cancelled.set()
            self.scheduler.wake()

    def wait(self, on_text: Callable[[str], object] | None = None) -> Completion:
        """Block until the answer is complete, passing text pieces to ``on_text``.

        If ``on_text`` raises (the reader went away), the request is cancelled and the
        exception propagates.
        """
        if self.listener is not None:
            raise RuntimeError("a ticket with a listener is read through the listener")
        while True:
            kind, value = self._events.get()
            if kind == "text":
                if on_text is not None:
                    try:
                        on_text(value)
                    except BaseException:
                        self.cancel()
                        raise
            elif kind == "done":
                return value
            else:
                raise value


@dataclass
class _Slot:
    """A KV sequence of a lane and the request running in it."""

    seq: int
    lane: int = 0
    fresh: bool = False  # placed here, its prompt not evaluated yet
    key: AdapterSet = ()  # adapter set the cached tokens were computed with
    cached: list[int] = field(default_factory=list)  # tokens whose KV this sequence holds
    ticket: Ticket | None = None
    sampler: Any = None
    scanner: StopScanner | None = None
    decoder: Any = None
    pending: int = -1  # sampled, not yet decoded
    generated: int = 0
    started: float = 0.0
    first_token: float | None = None
    deadline: float | None = None


BURST = 4  # tokens a sequence decodes in a row when rows are decoded one call each


class SplitPolicy:
    """Whether a step decodes faster as calls of consecutive rows or one call per row, learnt
    from timings.

    Batching is what pays on a GPU, and on a CPU it depends on the CPU: ``bench/batch_decode.py``
    measured a step of 4 rows at 0.9x the cost per row of a lone row on one 2-core machine
    and at 0.42x on another (the 262k-token vocabulary projection dominates). Both ways give
    the same logits (the engine's kernels are batch-invariant, adapter rows included), so the
    scheduler may pick the cheaper one. The cost of a row decoded alone is one number for
    every width, measured whenever a step runs row by row anyway (one request running, or no
    two of its rows within one span), so trying the other way is rare: when nothing has
    measured it after ``recheck`` batched steps, and now and then to follow a machine whose
    load changes (every ``recheck`` steps while the two ways are within 25%, four times as
    seldom otherwise).
    """

    def __init__(self, recheck: int = 50, weight: float = 0.3) -> None:
        self.recheck = recheck
        self.weight = weight  # of a new timing in the running average
        self.lone: float | None = None  # seconds per token, row by row
        self.together: dict[int, float] = {}  # rows of the fullest span -> seconds per token
        self.steps: dict[int, int] = {}

    def split(self, rows: int) -> bool:
        """True to decode a step whose fullest span (see :func:`_spans`) holds ``rows`` rows
        one call per row."""
        if rows < 2:
            return False
        together = self.together.get(rows)
        if together is None:
            return False  # batch first
        n = self.steps[rows] = self.steps.get(rows, 0) + 1
        if self.lone is None:
            return n % self.recheck == 0
        best = self.lone < together
        close = max(self.lone, together) < 1.25 * min(self.lone, together)
        return (not best) if n % (self.recheck if close else 4 * self.recheck) == 0 else best

    def record(self, rows: int, split: bool, seconds: float) -> None:
        """Take the timing of one step (seconds per token decoded) whose fullest span held
        ``rows`` rows, decoded row by row (``split``) or batched."""
        def mix(old: float | None) -> float:
            return seconds if old is None else old + self.weight * (seconds - old)

        if split or rows < 2:
            self.lone = mix(self.lone)
        else:
            self.together[rows] = mix(self.together.get(rows))


# Cost of a decode call of k rows, in calls of one row: CALL + ROW * k, fitted to
# bench/batch_decode.py on a 2-core machine (k = 1/2/3/4/8 rows cost 1.0/1.18/1.5/1.67/2.58).
# Only where a new request is seated depends on it.
CALL, ROW = 0.8, 0.2


def lane_gain(rows: dict[AdapterSet, int], key: AdapterSet) -> float:
    """Tokens per unit of time a lane running ``rows`` (rows per adapter set) gains by one
    more request under ``key``: a lane decodes a call per adapter set each step, so joining
    a set already there costs a row, and a new set costs a call. An idle lane gains most."""
    def speed(counts: dict[AdapterSet, int]) -> float:
        return sum(counts.values()) / sum(CALL + ROW * n for n in counts.values()) if counts \
            else 0.0

    return speed({**rows, key: rows.get(key, 0) + 1}) - speed(rows)


@dataclass
class _Lane:
    """A lane's slots, its worker thread and what it measured."""

    index: int
    slots: list[_Slot]
    policy: SplitPolicy = field(default_factory=SplitPolicy)
    steps: int = 0
    max_batch: int = 0
    thread: threading.Thread | None = None


class Scheduler:
    """Runs submitted requests on an engine, batching them step by step (see module doc)."""

    def __init__(self, engine: Engine, max_queue: int | None = None) -> None:
        self.engine = engine
        self.max_queue = max_queue  # requests allowed to wait for a slot; None: no limit
        self.slots = [_Slot(i, engine.lane_of(i)) for i in range(max(1, engine.config.n_seq_max))]
        self.lanes = [_Lane(i, [s for s in self.slots if s.lane == i])
                      for i in range(len(engine.lanes))]
        self._queue: deque[Ticket] = deque()
        self._cv = threading.Condition()
        self._started = False
        self._stopping = False
        self.reused = 0  # prompt tokens whose cached KV was reused (reuse_prefix)

    @property
    def steps(self) -> int:
        """Decode calls of steps run, all lanes (for benches and tests)."""
        return sum(lane.steps for lane in self.lanes)

    @property
    def max_batch(self) -> int:
        """Most sequences decoded in one call (settable: a test resets it to 0)."""
        return max(lane.max_batch for lane in self.lanes)

    @max_batch.setter
    def max_batch(self, value: int) -> None:
        for lane in self.lanes:
            lane.max_batch = value

    # ------------------------------------------------------------------ caller side
    @property
    def waiting(self) -> int:
        """Requests waiting for a slot."""
        return len(self._queue)

    @property
    def running(self) -> int:
        """Requests holding a slot."""
        return sum(s.ticket is not None for s in self.slots)

    def submit(self, request: GenRequest, *, listener: Listener | None = None,
               on_finish: Callable[[Ticket], object] | None = None) -> Ticket:
        """Queue ``request``; raises :class:`QueueFull`, or for an unusable request."""
        tokens, max_tokens = self.engine.prepare(request)
        ticket = Ticket(self, request, tokens, max_tokens, listener, on_finish)
        with self._cv:
            if self._stopping:
                raise ShuttingDown("the engine is shutting down")
            free = sum(s.ticket is None for s in self.slots)
            if self.max_queue is not None and len(self._queue) + 1 - free > self.max_queue:
                raise QueueFull(f"{len(self._queue)} requests are already waiting")
            self._queue.append(ticket)
            if not self._started:
                self._started = True
                for lane in self.lanes:
                    lane.thread = threading.Thread(target=self._run, args=(lane,), daemon=True,
                                                   name=f"locollm-lane-{lane.index}")
                    lane.thread.start()
            self._cv.notify_all()
        return ticket

    def wake(self) -> None:
        """Let the workers look at the queue and the cancel flags now."""
        with self._cv:
            self._cv.notify_all()

    def forget_cache(self) -> None:
        """Drop the cached prefixes of the free slots."""
        with self._cv:
            for slot in self.slots:
                if slot.ticket is None and slot.cached:
                    self.engine.forget(slot.seq)
                    slot.cached = []

    def stop(self, drain: bool = True) -> None:
        """Stop taking requests; finish those accepted (``drain``) or cancel them; join."""
        with self._cv:
            self._stopping = True
            if not drain:
                for ticket in [*self._queue, *(s.ticket for s in self.slots if s.ticket)]:
                    ticket.cancelled.set()
            self._cv.notify_all()
        for lane in self.lanes:
            if lane.thread is not None:
                lane.thread.join()

    # ------------------------------------------------------------------ worker side
    def _run(self, lane: _Lane) -> None:
        """One lane's worker: place queued requests (in any lane), admit this lane's, step."""
        while True:
            with self._cv:
                while not (self._busy(lane) or self._placeable()
                           or (self._stopping and not self._queue)):
                    self._cv.wait()
                self._place()
                if self._stopping and not self._queue and not self._busy(lane):
                    return
                fresh = [s for s in lane.slots if s.fresh]
                for slot in fresh:
                    slot.fresh = False
                # this round's requests; another lane may seat more here meanwhile (in a
                # slot freed this round, too): those wait for the next round
                mine = [(s, s.ticket) for s in lane.slots if s.ticket is not None]
            try:
                for slot in fresh:
                    self._admit(slot)
                self._reap([s for s, ticket in mine if s.ticket is ticket])
                groups: dict[AdapterSet, list[_Slot]] = {}
                for slot, ticket in mine:
                    if slot.ticket is ticket:
                        groups.setdefault(slot.key, []).append(slot)
                for key in sorted(groups):
                    self._step(lane, key, groups[key])
            except Exception as exc:  # a bug or a llama.cpp failure: fail what was running
                for slot, ticket in mine:
                    if slot.ticket is ticket:
                        self._finish(slot, error=exc)

    def _busy(self, lane: _Lane) -> bool:
        return any(s.ticket is not None for s in lane.slots)

    def _placeable(self) -> bool:
        return bool(self._queue) and any(s.ticket is None for s in self.slots)

    def _place(self) -> None:
        """Seat queued requests in free slots, first come first served (holding ``_cv``);
        wake the lanes that got one."""
        placed = False
        while self._queue:
            slot = self._free_slot(self._queue[0])
            if slot is None:
                break
            slot.fresh, slot.ticket = True, self._queue.popleft()
            placed = True
        if placed:
            self._cv.notify_all()

    def _free_slot(self, ticket: Ticket) -> _Slot | None:
        """A free slot for ``ticket``: with ``reuse_prefix`` the one sharing the longest
        prefix under the same adapter set; else in the lane it speeds up most
        (:func:`lane_gain`), the best placed there (``place``), holding the least cache."""
        free = [s for s in self.slots if s.ticket is None]
        if not free:
            return None
        if self.engine.config.reuse_prefix:
            same = [s for s in free if s.key == ticket.adapters and s.cached]
            if same:
                best = max(same, key=lambda s: _common(s.cached, ticket.tokens))
                if _common(best.cached, ticket.tokens):
                    return best

        def gain(lane: _Lane) -> float:
            rows: dict[AdapterSet, int] = {}
            for s in lane.slots:
                if s.ticket is not None:
                    rows[s.ticket.adapters] = rows.get(s.ticket.adapters, 0) + 1
            return lane_gain(rows, ticket.adapters)

        def least_cache(lane: int) -> int:
            return min(len(s.cached) for s in free if s.lane == lane)

        # ties (idle lanes): the one whose free slot holds the least cache, then the first
        lane = max({s.lane for s in free},
                   key=lambda i: (gain(self.lanes[i]), -least_cache(i), -i))
        running = [s for s in self.lanes[lane].slots if s.ticket is not None]
        seqs = {s.seq: s for s in self.lanes[lane].slots}

        def place(slot: _Slot) -> tuple[int, int, int, int]:
            """Like requests side by side: llama.cpp batches rows of consecutive sequences
            only. So first a slot next to running requests of the same adapter set, else the
            one farthest from other sets' requests (room for this set to grow)."""
            near = [seqs[i] for i in (slot.seq - 1, slot.seq + 1) if i in seqs]
            same = sum(n.ticket is not None and n.ticket.adapters == ticket.adapters
                       for n in near)
            gap = min((abs(r.seq - slot.seq) for r in running
                       if r.ticket.adapters != ticket.adapters),
                      default=len(seqs))
            return -same, -gap, len(slot.cached), slot.seq

        return min((s for s in free if s.lane == lane), key=place)

    def _admit(self, slot: _Slot) -> None:
        """Evaluate the prompt of the slot's new request and sample its first token."""
        ticket = slot.ticket
        assert ticket is not None
        if ticket.cancelled.is_set():
            self._finish(slot, error=Cancelled("cancelled before it started"))
            return
        request, tokens = ticket.request, ticket.tokens
        keep = 0
        if self.engine.config.reuse_prefix and slot.key == ticket.adapters:
            keep = min(_common(slot.cached, tokens), len(tokens) - 1)
        if not self.engine.forget(slot.seq, keep):
            keep = 0
        slot.key, slot.cached = ticket.adapters, tokens[:keep]
        self.reused += keep
        slot.started = time.perf_counter()
        slot.generated, slot.first_token, slot.pending = 0, None, -1
        limit = request.time_limit_s
        slot.deadline = None if limit is None else ticket.submitted + limit
        slot.scanner = StopScanner(request.stop)
        slot.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            slot.sampler = self.engine.sampler(request, ticket.max_tokens)
            index = self.engine.decode(ticket.adapters, [(slot.seq, tokens[keep:], keep)])[0]
        except Exception as exc:
            self._finish(slot, error=exc)
            return
        slot.cached = list(tokens)
        self._accept(slot, self.engine.sample(slot.sampler, slot.seq, index))

    def _step(self, lane: _Lane, key: AdapterSet, slots: list[_Slot]) -> None:
        """Decode tokens for ``slots`` (all under adapter set ``key``): one token each, in
        calls spanning at most ``engine.max_rows`` sequences (the engine pads the sequences
        between, since llama.cpp batches consecutive sequences only), or row by row where
        :class:`SplitPolicy` measured one call per row to be faster. Both give the same
        logits.

        Row by row, each sequence decodes up to :data:`BURST` tokens in a row: llama.cpp
        rebuilds its compute graph whenever the sequence or the adapters change from one call
        to the next (2-3 ms of a 20-25 ms call here), and a burst keeps the graph.
        """
        slots = sorted(slots, key=lambda s: s.seq)
        spans = _spans(slots, self.engine.max_rows)
        widest = max(len(span) for span in spans)
        # nothing to batch: row by row, in bursts; else as the policy measured for this width
        split = widest == 1 or lane.policy.split(widest)
        start, tokens = time.perf_counter(), 0
        if split:
            for slot in slots:
                ticket = slot.ticket
                for _ in range(BURST if len(slots) > 1 else 1):
                    self._decode_step(lane, key, [slot])
                    tokens += 1
                    # finished (and the slot perhaps already seated again), or cancelled
                    if slot.ticket is not ticket or ticket.cancelled.is_set():
                        break
        else:
            for span in spans:
                self._decode_step(lane, key, span)
            tokens = len(slots)
        lane.policy.record(widest, split, (time.perf_counter() - start) / tokens)

    def _decode_step(self, lane: _Lane, key: AdapterSet, slots: list[_Slot]) -> None:
        rows = [(s.seq, [s.pending], len(s.cached)) for s in slots]
        indices = self.engine.decode(key, rows)
        lane.steps += 1
        lane.max_batch = max(lane.max_batch, len(rows))
        for slot, index in zip(slots, indices, strict=True):
            slot.cached.append(slot.pending)
            self._accept(slot, self.engine.sample(slot.sampler, slot.seq, index))

    def _accept(self, slot: _Slot, token: int) -> None:
        """Take one sampled token: stream its text, or finish the request."""
        ticket = slot.ticket
        assert ticket is not None and slot.scanner is not None
        if slot.first_token is None:
            slot.first_token = time.perf_counter() - ticket.submitted
        if self.engine.is_end(token):
            self._finish(slot, "stop")
            return
        slot.generated += 1
        text = slot.scanner.feed(slot.decoder.decode(self.engine.piece(token)))
        if text:
            ticket.emit("text", text)
        if slot.scanner.stopped:
            self._finish(slot, "stop")
        elif slot.generated >= ticket.max_tokens or (
                slot.deadline is not None and time.perf_counter() > slot.deadline):
            self._finish(slot, "length")
        else:
            slot.pending = token

    def _reap(self, slots: list[_Slot]) -> None:
        """Free those of ``slots`` whose requests were cancelled."""
        for slot in slots:
            if slot.ticket is not None and slot.ticket.cancelled.is_set():
                self._finish(slot, error=Cancelled("cancelled"))

    def _finish(self, slot: _Slot, reason: str = "stop", error: BaseException | None = None
                ) -> None:
        """End the slot's request with ``reason`` (or ``error``) and free the slot."""
        ticket, scanner = slot.ticket, slot.scanner
        assert ticket is not None
        if slot.sampler is not None:
            slot.sampler.close()
            slot.sampler = None
        if error is None and scanner is not None:
            tail = scanner.feed(slot.decoder.decode(b"", final=True)) + scanner.flush()
            if tail:
                ticket.emit("text", tail)
        if error is not None or not self.engine.config.reuse_prefix:
            self.engine.forget(slot.seq)
            slot.cached = []
        with self._cv:
            slot.ticket = None
            if self._queue:
                self._cv.notify_all()  # a lane may seat a waiting request here
        if error is not None:
            ticket.emit("error", error)
            return
        ticket.emit("done", Completion(
            scanner.text if scanner else "", len(ticket.tokens), slot.generated,
            time.perf_counter() - slot.started, reason, adapter_label(ticket.adapters),
            slot.first_token))


def _spans(slots: list[_Slot], most: int) -> list[list[_Slot]]:
    """``slots`` (sorted by sequence) cut into groups spanning at most ``most`` sequences
    each: the engine pads the sequences between a call's rows, so each is one micro-batch of
    at most ``most`` rows."""
    spans: list[list[_Slot]] = []
    for slot in slots:
        if spans and slot.seq - spans[-1][0].seq < most:
            spans[-1].append(slot)
        else:
            spans.append([slot])
    return spans


def _common(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
