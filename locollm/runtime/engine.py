"""The only module that touches llama.cpp.

The base GGUF is loaded once. Its llama.cpp contexts (*lanes*, :mod:`.context`: one per CPU
share, two on a 2-core machine, one with a GPU) hold several sequences each (one KV sequence
per request, a KV stream of its own each); the lanes decode at the same time, from the
scheduler's threads. LoRA GGUFs are loaded with the low-level adapter API; a set of adapters
with scales is applied per decode call on a lane, so the :mod:`~locollm.runtime.scheduler` can
decode the sequences of each adapter set in a lane as one batch with that set applied
(continuous batching across adapters). Sequence numbers are the engine's (0 ..
``n_seq_max`` - 1, lane by lane); the engine maps them to a lane and its own sequence. Traps
handled here:

* ``llama_adapter_lora_init`` on a bad file can crash the process, so each adapter file is
  validated (GGUF header, ``general.type = adapter``, matching architecture) before llama.cpp
  sees it, and the pointer it returns is checked.
* Batched answers must equal one-by-one answers (``batch_invariant``). ggml's repacked
  ("extra buffer") matmuls compute four rows at a time and round differently from one row,
  so with them a decode call holds at most :data:`~.context.REPACK_ROWS` (3) rows; where they
  cannot be trusted (AMX, KleidiAI builds) they are off and a call holds at most
  :data:`~.context.EXACT_ROWS` (7) rows: from 8 rows on ggml switches the K-quant weights to a
  tiled matmul that gives some rows other logits than alone. The quantized base weights then
  give a sequence the same logits whatever else is in the step (tested), and a prompt is
  evaluated in a decode call of its own.
  Lanes are made with the same parameters, so a request gets the same logits in any lane.
  llama.cpp built with llamafile's matmul (``make setup``'s build: without it prompt processing
  runs at 0.60x) multiplies the float32 LoRA matrices of two or more rows with llamafile's
  kernel, which sums a row the same way whatever the batch, and of one row with ggml's vector
  kernel, which rounds differently. So a decode of a single token under an adapter gets a
  *pad row*: the same token in a neighbouring KV sequence, no logits, its cell removed right
  after (:meth:`.context.Context.decode_padded`); every adapter row then goes through the one
  kernel, and adapter rows batch like base rows. Rows batch only within a micro-batch, which
  llama.cpp forms from consecutive sequence ids, so the sequences between a step's rows get
  pad rows too, and the scheduler hands the engine spans of at most
  :attr:`Engine.exact_rows` sequences of one lane.
* A cached prefix is only ever reused by a request with the same adapter set (the scheduler's
  slots are keyed by it): a prefix computed under another adapter matches neither model.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import AdapterError, RuntimeEngineError
from .context import EXACT_ROWS, REPACK_ROWS, Context, Row, pick_lanes, repacks_rows_alike
from .generation import AdapterSet, Completion, GenRequest, adapter_label
from .scheduler import Scheduler

__all__ = ["Completion", "Engine", "EngineConfig", "GenRequest", "default_threads",
           "gpu_layers", "json_grammar", "quantize_model", "validate_adapter_file"]


def performance_cores() -> int | None:
    """Performance cores of a hybrid CPU (Apple silicon, Intel P/E), None when not hybrid.

    macOS reports them as ``hw.perflevel0.physicalcpu``; Linux lists a hybrid Intel CPU's
    P-cores in ``/sys/devices/cpu_core/cpus`` (E-cores under ``cpu_atom``).
    """
    import subprocess
    import sys

    if sys.platform == "darwin":
        out = subprocess.run(["sysctl", "-n", "hw.perflevel0.physicalcpu"],
                             capture_output=True, text=True, check=False)
        return int(out.stdout) if out.stdout.strip().isdigit() else None
    try:
        spec = Path("/sys/devices/cpu_core/cpus").read_text().strip()
    except OSError:
        return None
    return len(_cpu_list(spec)) or None


def _cpu_list(spec: str) -> list[int]:
    """``0-3,8,10-11`` -> the CPU numbers (Linux cpulist format)."""
    cpus: list[int] = []
    for part in filter(None, spec.split(",")):
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus


def pick_threads(env: str | None, cpu_count: int, perf_cores: int | None) -> int:
    """llama.cpp threads: ``LOCOLLM_THREADS`` when set; else the performance cores of a hybrid
    laptop CPU; else 1 on a machine of two CPUs or fewer (one thread was far faster than two
    on a small shared box: no spinning against other work); else half the CPUs (one per core
    when SMT doubles them)."""
    if env:
        return max(1, int(env))
    if perf_cores:
        return perf_cores
    return 1 if cpu_count <= 2 else max(1, cpu_count // 2)


def default_threads() -> int:
    """Threads for this machine (see :func:`pick_threads`)."""
    return pick_threads(os.environ.get("LOCOLLM_THREADS"), os.cpu_count() or 1,
                        performance_cores())


def physical_cores() -> int:
    """Physical cores this process may use: the CPUs of its affinity mask (a container's
    share) less SMT siblings (Linux), ``hw.physicalcpu`` on macOS, else the CPU count."""
    import subprocess
    import sys

    if sys.platform == "darwin":
        out = subprocess.run(["sysctl", "-n", "hw.physicalcpu"], capture_output=True,
                             text=True, check=False)
        return int(out.stdout) if out.stdout.strip().isdigit() else os.cpu_count() or 1
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        try:
            siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
            cores.add(min(_cpu_list(siblings.read_text().strip())))
        except (OSError, ValueError):
            cores.add(cpu)
    return len(cores) or 1


def gpu_layers(requested: int | None, gpu_offload: bool) -> int:
    """Layers to offload: ``requested`` when given (-1: all), else all of them when llama.cpp
    was built with a GPU backend (Metal, CUDA, Vulkan...) and none on a CPU-only build."""
    if requested is not None:
        return requested
    return -1 if gpu_offload else 0


def default_gpu_layers() -> int | None:
    """``LOCOLLM_GPU_LAYERS`` (-1: all, 0: CPU), or None when unset (then :func:`gpu_layers`
    decides from the build). The Colab notebook sets -1 so eval runs on the T4."""
    value = os.environ.get("LOCOLLM_GPU_LAYERS", "").strip()
    try:
        return int(value) if value else None
    except ValueError:
        raise RuntimeEngineError(f"LOCOLLM_GPU_LAYERS={value!r} is not a whole number",
                                 fix="set it to -1 (all layers), 0 (CPU) or a layer count"
                                 ) from None


@dataclass
class EngineConfig:
    """How the base model is loaded."""

    # Context window of one sequence in tokens (prompt + answer).
    n_ctx: int = 2048
    # CPU threads; None: LOCOLLM_THREADS, else the performance cores (see pick_threads).
    n_threads: int | None = None
    # Threads for decode calls of several tokens (prompts, batched steps); None: n_threads.
    # Batched work has more to share between threads than one token, so more can pay off.
    n_threads_batch: int | None = None
    # Allow Engine.logits (numeric verification); it runs in a small context of its own.
    logits_all: bool = False
    # Sampling seed of requests that bring none.
    seed: int = 0
    # Reuse a finished request's KV cache for the next request with the same adapter set and
    # a shared prompt prefix. Off by default: a prefix evaluated in an earlier call rounds
    # differently from the whole prompt at once, so a greedy answer would depend on the
    # request before it (eval order, server traffic).
    reuse_prefix: bool = False
    # Sequences decoded together (KV sequences, split between the lanes); each gets n_ctx
    # tokens.
    n_seq_max: int = 8
    # llama.cpp contexts decoding at the same time, n_threads each (at most n_seq_max);
    # None: LOCOLLM_LANES, else two when the physical cores hold two (see pick_lanes).
    lanes: int | None = None
    # Layers on the GPU (-1: all); None: LOCOLLM_GPU_LAYERS, else all when llama.cpp has a
    # GPU backend and 0 on a CPU-only build.
    n_gpu_layers: int | None = None
    # Batched answers equal one-by-one answers bit for bit: a call holds at most
    # Engine.exact_rows rows (3 with ggml's repacked CPU matmuls, which round a row
    # differently in a group of four; 7 where they are off: AMX and KleidiAI builds), and on
    # a llama.cpp built with llamafile's matmul a lone adapter row gets a pad row (see
    # Engine.pads_adapter_rows). Off: repacked weights, calls as wide as the lane, no pad
    # rows (faster with big groups; a greedy answer may then differ in a near tie).
    batch_invariant: bool = True
    # ggml's repacked CPU weights (faster); None: where their batches are known to round like
    # one row (see context.repacks_rows_alike), and always when batch_invariant is off.
    repack: bool | None = None


def validate_adapter_file(path: str | Path, arch: str) -> None:
    """Check a LoRA GGUF before llama.cpp loads it; raise :class:`AdapterError` if unusable.

    The whole file is parsed (an adapter has no vocabulary, so this is quick), which also
    catches a file cut short before llama.cpp reads it.
    """
    import gguf

    path = Path(path)
    if not path.is_file():
        raise AdapterError("LoRA GGUF not found", file=path,
                           fix="run `locollm export --gguf` on the adapter folder")
    try:
        reader = gguf.GGUFReader(str(path), "r")
    except Exception as exc:  # the gguf package raises several types for a corrupt header
        raise AdapterError(f"not a readable GGUF ({exc})", file=path,
                           fix="re-export it with `locollm export --gguf`") from exc

    def value(key: str, default: str) -> str:
        field = reader.fields.get(key)
        return default if field is None else str(field.contents())

    if value("general.type", "model") != "adapter":
        raise AdapterError("GGUF is a model, not a LoRA adapter", file=path)
    file_arch = value("general.architecture", "?")
    if file_arch != arch:
        raise AdapterError(f"adapter is for architecture {file_arch!r}, the base is {arch!r}",
                           file=path, fix="train the adapter on this base model")


_LOG_STATE = {"callback": None, "last": 0}


def quiet_llama_logs() -> None:
    """Route llama.cpp's log to stderr for errors only (all of it with LOCOLLM_VERBOSE=1).

    ggml's levels are DEBUG=1, INFO=2, WARN=3, ERROR=4, CONT=5 (continue the previous line);
    llama-cpp-python's own filter predates that numbering and lets warnings through.
    """
    import sys

    import llama_cpp

    if _LOG_STATE["callback"] is not None:
        return
    verbose = os.environ.get("LOCOLLM_VERBOSE") == "1"

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        if level != 5:
            _LOG_STATE["last"] = level
        if verbose or _LOG_STATE["last"] >= 4:
            sys.stderr.write(text.decode("utf-8", "replace"))

    _LOG_STATE["callback"] = callback  # keep a reference: llama.cpp holds only the pointer
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()


class Engine:
    """A base GGUF loaded once, with named LoRA adapters applied per decode call."""

    def __init__(self, base_gguf: str | Path, config: EngineConfig | None = None) -> None:
        import llama_cpp

        from ..gguf.names import GGUFInfo

        quiet_llama_logs()
        self.config = config or EngineConfig()
        self.base_path = Path(base_gguf)
        if not self.base_path.is_file():
            raise RuntimeEngineError("model GGUF not found", file=self.base_path)
        requested = self.config.n_gpu_layers
        self.n_gpu_layers = gpu_layers(default_gpu_layers() if requested is None else requested,
                                       llama_cpp.llama_supports_gpu_offload())
        self.threads = self.config.n_threads or default_threads()
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = self.n_gpu_layers
        # repacked weights (see exact_rows)
        self.repacked = (self.config.repack if self.config.repack is not None
                         else not self.config.batch_invariant
                         or repacks_rows_alike(llama_cpp.llama_print_system_info()))
        params.use_extra_bufts = self.repacked
        self.model = llama_cpp.llama_model_load_from_file(str(self.base_path).encode(), params)
        if not self.model:
            raise RuntimeEngineError("llama.cpp could not load the model (not a GGUF model, "
                                     "or made for a newer llama.cpp)", file=self.base_path)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self._lock = threading.RLock()  # the logits context, closing
        # A lone adapter row gets a pad row (module doc); one more KV sequence than the
        # scheduler's slots in each lane is always there to hold it next to the last slot.
        self.pads_adapter_rows = (self.config.batch_invariant and self.n_gpu_layers == 0
                                  and not self.exact_adapter_batches)
        n_seq = max(1, self.config.n_seq_max)
        requested = self.config.lanes or pick_lanes(
            os.environ.get("LOCOLLM_LANES"), physical_cores(), self.threads,
            self.n_gpu_layers != 0)
        self.seqs_per_lane = -(-n_seq // min(n_seq, max(1, requested)))
        self.lanes: list[Context] = []
        try:
            for first in range(0, n_seq, self.seqs_per_lane):
                slots = min(self.seqs_per_lane, n_seq - first)
                self.lanes.append(Context(self.model, n_ctx=self.config.n_ctx,
                                          n_seq=slots + self.pads_adapter_rows,
                                          threads=self.threads, flash=self.n_gpu_layers != 0,
                                          threads_batch=self.config.n_threads_batch))
        except BaseException:
            for lane in self.lanes:
                lane.close()
            llama_cpp.llama_model_free(self.model)
            raise
        self._logits_ctx: Context | None = None
        arch = self.meta("general.architecture") or "?"
        self.info = GGUFInfo(arch, int(self.meta(f"{arch}.block_count") or 0),
                             self.meta("general.name") or self.base_path.stem)
        self.chat_template = self.meta("tokenizer.chat_template")
        self._adapters: dict[str, object] = {}
        self._arrays: dict[AdapterSet, tuple[object, object]] = {}
        self._last: AdapterSet = ()
        self.scheduler = Scheduler(self)

    # ------------------------------------------------------------------ model and adapters
    def meta(self, key: str) -> str | None:
        """A GGUF metadata value of the base as text (None when absent)."""
        import llama_cpp

        size = 256
        while True:
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_model_meta_val_str(self.model, key.encode(), buf, size)
            if n < 0:
                return None
            if n < size:
                return buf.value.decode("utf-8", "replace")
            size = n + 1

    @property
    def n_ctx(self) -> int:
        """Tokens one sequence holds (prompt + answer)."""
        return self.lanes[0].n_ctx

    def lane_of(self, seq: int) -> int:
        """The lane (index into :attr:`lanes`) that holds sequence ``seq``."""
        return seq // self.seqs_per_lane

    def _local(self, seq: int) -> tuple[Context, int]:
        """The lane of ``seq`` and the sequence's number in that lane's context."""
        lane = seq // self.seqs_per_lane
        if not 0 <= lane < len(self.lanes):
            raise RuntimeEngineError(f"sequence {seq} is not one of the engine's "
                                     f"{self.config.n_seq_max}")
        return self.lanes[lane], seq - lane * self.seqs_per_lane

    @property
    def adapters(self) -> list[str]:
        """Names of the loaded adapters."""
        return sorted(self._adapters)

    @property
    def active(self) -> str | None:
        """Label of the adapter set applied last (None: bare base)."""
        return adapter_label(self._last)

    @property
    def active_set(self) -> AdapterSet:
        """The adapter set applied last."""
        return self._last

    @functools.cached_property
    def exact_adapter_batches(self) -> bool:
        """True when rows decoded together under an adapter get the logits they get alone.

        The quantized base weights go through kernels that sum a row the same way whatever
        the batch, but llama.cpp built with llamafile's matmul (the default build, and what
        ``make setup`` builds) multiplies the float32 LoRA matrices of two or more rows with it
        and of one row with ggml's vector kernel, which rounds differently; a greedy answer can
        then change by batching. Where this is False, :meth:`decode` pads a lone adapter row
        (:attr:`pads_adapter_rows`).
        """
        import llama_cpp

        return b"LLAMAFILE = 1" not in llama_cpp.llama_print_system_info()

    @property
    def exact_rows(self) -> int:
        """Most rows a decode call may hold for each row to get the logits it gets alone:
        :data:`~.context.REPACK_ROWS` with repacked weights, else
        :data:`~.context.EXACT_ROWS`."""
        return REPACK_ROWS if self.repacked else EXACT_ROWS

    @property
    def max_rows(self) -> int:
        """Most rows the scheduler puts in one decode call (:attr:`exact_rows` with
        ``batch_invariant``)."""
        rows = self.seqs_per_lane
        return min(rows, self.exact_rows) if self.config.batch_invariant else rows

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has freed the model."""
        return self.model is None

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Validate and load a LoRA GGUF under ``name`` (applied per request)."""
        import llama_cpp

        self._require_open()
        if name in self._adapters:
            return
        validate_adapter_file(path, self.info.architecture)
        pointer = llama_cpp.llama_adapter_lora_init(self.model, str(path).encode())
        if not pointer:
            raise AdapterError("llama.cpp rejected the LoRA GGUF (shapes or tensor names do "
                               "not match this base)", file=path,
                               fix="re-export the adapter against this base model")
        self._adapters[name] = pointer

    def check_adapters(self, adapters: AdapterSet) -> None:
        """Raise :class:`AdapterError` unless every adapter of the set is loaded."""
        for name, _ in adapters:
            if name not in self._adapters:
                raise AdapterError(f"adapter {name!r} is not loaded",
                                   fix=f"loaded adapters: {self.adapters or 'none'}")

    def apply(self, adapters: AdapterSet, ctx: Context | None = None) -> None:
        """Apply an adapter set on a context (default: the first lane; a no-op when it is
        already applied). The caller holds the context's lock."""
        import llama_cpp

        ctx = ctx or self.lanes[0]
        self._last = adapters
        if adapters == ctx.adapters:
            return
        self.check_adapters(adapters)
        if not adapters:
            rc = llama_cpp.llama_set_adapters_lora(ctx.ctx, None, 0, None)
        else:
            if adapters not in self._arrays:
                pointers = (llama_cpp.llama_adapter_lora_p_ctypes * len(adapters))(
                    *(self._adapters[n] for n, _ in adapters))
                scales = (ctypes.c_float * len(adapters))(*(s for _, s in adapters))
                self._arrays[adapters] = (pointers, scales)
            pointers, scales = self._arrays[adapters]
            rc = llama_cpp.llama_set_adapters_lora(ctx.ctx, pointers, len(adapters), scales)
        if rc != 0:
            raise RuntimeEngineError(f"llama.cpp could not apply {adapter_label(adapters)!r} "
                                     f"(code {rc})")
        ctx.adapters = adapters

    def use(self, name: str | None, scale: float = 1.0) -> None:
        """Apply adapter ``name`` (None: bare base) now; requests apply their own set."""
        with self.lanes[0].lock:
            self._require_open()
            self.apply(((name, scale),) if name else ())

    def reset_cache(self) -> None:
        """Clear the KV memory of every sequence (and the scheduler's prefix cache)."""
        self.scheduler.forget_cache()

    # ------------------------------------------------------------------ tokens and text
    def _require_open(self) -> None:
        """Raise instead of calling llama.cpp on freed memory (which would crash)."""
        if self.model is None:
            raise RuntimeEngineError("the engine is closed")

    def tokenize(self, text: str, add_bos: bool = True) -> list[int]:
        """Tokens of ``text`` as llama.cpp sees them (special tokens parsed)."""
        import llama_cpp

        self._require_open()
        data = text.encode("utf-8")
        size = len(data) + 2
        buf = (llama_cpp.llama_token * size)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, size, add_bos, True)
        if n < 0:  # more tokens than bytes + 2 (cannot happen with byte-level BPE)
            size = -n
            buf = (llama_cpp.llama_token * size)()
            n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, size, add_bos, True)
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        """The bytes of one token (special tokens render as nothing, as in llama.cpp)."""
        import llama_cpp

        self._require_open()
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, 64, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, -n, 0, False)
        return buf.raw[:n]

    def is_end(self, token: int) -> bool:
        """True for an end-of-generation token (EOS, end of turn)."""
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    @property
    def bos_text(self) -> str:
        """The BOS token's text (for chat templates)."""
        import llama_cpp

        token = llama_cpp.llama_vocab_bos(self.vocab)
        return "" if token < 0 else self.token_text(token)

    @property
    def eos_text(self) -> str:
        """The EOS token's text (for chat templates)."""
        import llama_cpp

        token = llama_cpp.llama_vocab_eos(self.vocab)
        return "" if token < 0 else self.token_text(token)

    def token_text(self, token: int) -> str:
        """The vocabulary text of ``token`` (special tokens as written, e.g. <end_of_turn>)."""
        import llama_cpp

        return llama_cpp.llama_vocab_get_text(self.vocab, token).decode("utf-8", "replace")

    # ------------------------------------------------------------------ what the scheduler uses
    def decode(self, adapters: AdapterSet, rows: Sequence[Row], logits: bool = True
               ) -> list[int]:
        """Apply ``adapters`` and evaluate ``rows`` (sequence, tokens, position), all of one
        lane, in one call; the batch index of each row's last token (see :meth:`sample`).
        ``logits=False`` only fills the KV cache (no vocabulary projection; for benches)."""
        lane = self.lane_of(rows[0][0])
        if any(self.lane_of(seq) != lane for seq, _, _ in rows):
            raise RuntimeEngineError("one decode call takes the sequences of one lane")
        ctx, first = self.lanes[lane], lane * self.seqs_per_lane
        local = [(seq - first, tokens, pos) for seq, tokens, pos in rows]
        with ctx.lock:
            self._require_open()
            self.apply(adapters, ctx)
            return ctx.decode_padded(local, bool(adapters), self.pads_adapter_rows, logits)

    def forget(self, seq: int, keep: int = 0) -> bool:
        """Drop sequence ``seq`` from the KV memory from position ``keep`` on; False when the
        memory cannot cut it there (then the whole sequence is dropped)."""
        ctx, local = self._local(seq)
        return ctx.forget(local, keep)

    def next_position(self, seq: int) -> int:
        """The position after the last one sequence ``seq`` holds (0 when empty)."""
        import llama_cpp

        ctx, local = self._local(seq)
        return llama_cpp.llama_memory_seq_pos_max(ctx.memory, local) + 1

    def clear_memory(self) -> None:
        """Empty the KV memory of every sequence."""
        for ctx in self.lanes:
            ctx.clear()

    def sampler(self, request: GenRequest, max_tokens: int) -> _Sampler:
        """A llama.cpp sampler chain for one request (free it with ``close``)."""
        return _Sampler(self, request, max_tokens)

    def sample(self, sampler: _Sampler, seq: int, index: int) -> int:
        """Pick the next token from the logits of batch index ``index`` of the last decode on
        sequence ``seq``'s lane (and accept it)."""
        import llama_cpp

        return llama_cpp.llama_sampler_sample(sampler.chain, self.lanes[self.lane_of(seq)].ctx,
                                              index)

    def row_logits(self, seq: int, index: int):
        """The logits (numpy, a copy) of batch index ``index`` of the last decode on sequence
        ``seq``'s lane."""
        import llama_cpp
        import numpy as np

        ctx = self.lanes[self.lane_of(seq)].ctx
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, index),
                                     shape=(self.n_vocab,)).copy()

    # ------------------------------------------------------------------ generation
    def prepare(self, request: GenRequest, index: int | None = None) -> tuple[list[int], int]:
        """(prompt tokens, max new tokens) of ``request``; raise for an unusable one."""
        self.check_adapters(request.adapter_set())
        tokens = self.tokenize(request.prompt)
        where = "" if index is None else f"request {index}: "
        if len(tokens) >= self.n_ctx:
            raise RuntimeEngineError(f"{where}prompt is {len(tokens)} tokens, over the "
                                     f"context of {self.n_ctx}", fix="shorten the prompt")
        if request.max_tokens < 1:
            raise RuntimeEngineError(f"{where}max_tokens must be at least 1")
        return tokens, min(request.max_tokens, self.n_ctx - len(tokens))

    def complete(self, prompt: str, *, adapter: str | None = None, max_tokens: int = 256,
                 temperature: float = 0.0, top_p: float = 1.0,
                 stop: list[str] | tuple[str, ...] = (),
                 on_text: Callable[[str], object] | None = None, **extra) -> Completion:
        """Generate a continuation of ``prompt`` with ``adapter`` applied (None: base).

        With ``on_text`` the answer streams: each new piece of text (stop strings already cut)
        is passed to it as it is generated, and the whole Completion still comes back. Extra
        keyword arguments are :class:`GenRequest` fields (``seed``, ``adapters``, ...).
        """
        request = GenRequest(prompt, adapter, max_tokens, temperature, top_p, tuple(stop),
                             **extra)
        ticket = self.scheduler.submit(request)
        return ticket.wait(on_text)

    def complete_batch(self, requests: Sequence[GenRequest],
                       on_done: Callable[[int, Completion], object] | None = None
                       ) -> list[Completion]:
        """Generate for every request, decoded together; results in the order of ``requests``.

        Greedy answers equal :meth:`complete` one by one. ``on_done(i, completion)`` is called
        (in this thread) as each request finishes, e.g. to advance a progress bar. A request
        that cannot run (unknown adapter, prompt over the context) raises before any starts.
        """
        import queue

        for i, request in enumerate(requests):
            self.prepare(request, i)
        finished: queue.SimpleQueue = queue.SimpleQueue()
        tickets = [self.scheduler.submit(r, on_finish=lambda t, i=i: finished.put(i))
                   for i, r in enumerate(requests)]
        results: list[Completion | None] = [None] * len(tickets)
        try:
            for _ in tickets:
                i = finished.get()
                results[i] = tickets[i].wait()
                if on_done is not None:
                    on_done(i, results[i])
        except BaseException:
            for ticket in tickets:
                ticket.cancel()
            raise
        return results  # type: ignore[return-value]

    def eos_token(self) -> int:
        """The model's end-of-sequence token id."""
        import llama_cpp

        return int(llama_cpp.llama_vocab_eos(self.vocab))

    def logits(self, tokens: list[int], adapter: str | None = None):
        """Logits (n_tokens x vocab, numpy) for ``tokens``; needs ``logits_all=True``.

        Runs in a one-sequence context of its own, so it never disturbs requests in flight.
        """
        import llama_cpp
        import numpy as np

        if not self.config.logits_all:
            raise RuntimeEngineError("engine was built without logits_all")
        with self._lock:
            self._require_open()
            if self._logits_ctx is None:
                self._logits_ctx = Context(self.model, n_ctx=self.config.n_ctx, n_seq=1,
                                           threads=self.threads, flash=self.n_gpu_layers != 0)
            ctx = self._logits_ctx
            self.apply(((adapter, 1.0),) if adapter else (), ctx)
            llama_cpp.llama_memory_clear(ctx.memory, True)
            ctx.decode([(0, tokens, 0)], all_logits=True)
            rows = [np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx.ctx, i),
                                          shape=(self.n_vocab,)) for i in range(len(tokens))]
            return np.stack(rows).copy()

    def close(self, drain: bool = True) -> None:
        """Finish (``drain``) or cancel the requests in flight, then free adapters and model."""
        import llama_cpp

        if getattr(self, "model", None) is None:
            return
        self.scheduler.stop(drain)
        with self._lock:
            for ctx in (*self.lanes, self._logits_ctx):
                if ctx is not None:
                    with contextlib.suppress(Exception):  # closing must not raise
                        llama_cpp.llama_set_adapters_lora(ctx.ctx, None, 0, None)
                    ctx.close()
            self._adapters.clear()  # llama.cpp frees adapters with the model
            llama_cpp.llama_model_free(self.model)
            self.model = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Sampler:
    """One request's llama.cpp sampler chain: logit bias, penalties, grammar, then greedy or
    top-p, temperature and a seeded draw."""

    def __init__(self, engine: Engine, request: GenRequest, max_tokens: int) -> None:
        import llama_cpp

        params = llama_cpp.llama_sampler_chain_default_params()
        params.no_perf = True
        self.chain = llama_cpp.llama_sampler_chain_init(params)
        add = lambda s: llama_cpp.llama_sampler_chain_add(self.chain, s)  # noqa: E731
        if request.logit_bias:
            bias = (llama_cpp.llama_logit_bias * len(request.logit_bias))(
                *(llama_cpp.llama_logit_bias(int(t), float(b))
                  for t, b in request.logit_bias.items()))
            add(llama_cpp.llama_sampler_init_logit_bias(engine.n_vocab, len(bias), bias))
        if request.presence_penalty or request.frequency_penalty:
            # over every generated token, as OpenAI counts them (the prompt is never accepted)
            add(llama_cpp.llama_sampler_init_penalties(engine.n_vocab, max_tokens, 1.0,
                                                       request.frequency_penalty,
                                                       request.presence_penalty))
        if request.grammar:
            grammar = llama_cpp.llama_sampler_init_grammar(
                engine.vocab, request.grammar.encode("utf-8"), b"root")
            if not grammar:
                llama_cpp.llama_sampler_free(self.chain)
                raise RuntimeEngineError("llama.cpp could not parse the grammar",
                                         fix="check the GBNF (or the JSON schema) given")
            add(grammar)
        if request.temperature <= 0:
            add(llama_cpp.llama_sampler_init_greedy())
        else:
            if request.top_p < 1.0:
                add(llama_cpp.llama_sampler_init_top_p(request.top_p, 1))
            add(llama_cpp.llama_sampler_init_temp(request.temperature))
            seed = engine.config.seed if request.seed is None else request.seed
            add(llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))

    def close(self) -> None:
        import llama_cpp

        if self.chain:
            llama_cpp.llama_sampler_free(self.chain)
            self.chain = None


def json_grammar(schema: dict | None = None) -> str:
    """A GBNF grammar for any JSON object (``schema`` None) or for JSON following ``schema``.

    llama-cpp-python's converter (the port of llama.cpp's ``json_schema_to_grammar``) is used,
    so the grammar matches what llama.cpp's own server builds.
    """
    import json

    from llama_cpp import llama_grammar

    if not schema:
        return llama_grammar.JSON_GBNF
    try:
        return llama_grammar.json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises ValueError, KeyError, TypeError...
        raise RuntimeEngineError(f"cannot turn the JSON schema into a grammar ({exc})",
                                 fix="use a simpler schema, or response_format json_object"
                                 ) from exc


QUANT_TYPES = {"q4_k_m": 15, "q5_k_m": 17, "q8_0": 7, "f16": 1, "f32": 0}


def quantize_model(src: str | Path, dest: str | Path, quant: str = "q4_k_m",
                   threads: int | None = None) -> Path:
    """Quantize a GGUF with llama.cpp's ``llama_model_quantize`` (no binary, no compiler).

    Tensors already of the chosen type are copied as they are (``allow_requantize`` only lets
    the quantizer read quantized input where the type must change).
    """
    import llama_cpp

    from ..paths import atomic_path

    if quant not in QUANT_TYPES:
        raise RuntimeEngineError(f"unknown quantization {quant!r}",
                                 fix=f"use one of {', '.join(QUANT_TYPES)}")
    quiet_llama_logs()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_TYPES[quant]
    params.allow_requantize = True
    params.nthread = threads or os.cpu_count() or 1
    with atomic_path(dest) as tmp:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(),
                                            ctypes.byref(params))
        if rc != 0:
            raise RuntimeEngineError(f"llama.cpp could not quantize the model (code {rc})",
                                     file=src)
    return Path(dest)
