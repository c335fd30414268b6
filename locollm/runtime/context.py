"""One llama.cpp context of the engine (a *lane*): its KV sequences, its batch buffer, its lock,
and the pad rows that keep a decode call one micro-batch.

The engine holds one lane per CPU share (:func:`pick_lanes`): the lanes decode at the same time
in the scheduler's threads (llama-cpp-python's ctypes calls release the GIL), each with the
adapter set of its own call applied. Every lane is made with the same parameters, so a request
gets the same logits in whichever lane it runs. Only the engine uses this module.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..errors import RuntimeEngineError
from .generation import AdapterSet

# Most rows one decode call holds with ``batch_invariant``. From 8 rows on, ggml's CPU backend
# multiplies K-quant weights (the Q4_K / Q6_K tensors of a Q4_K_M model) with its tiled matmul
# (ggml-cpu/tiled/tiled.cpp, ``ggml_tiled_min_batch``: ``rows >= 8``; no build option turns it
# off), which sums differently from the per-row ``vec_dot`` of 1-7 rows: some rows' logits then
# move by 0.5-5 and greedy answers change (eval's batched base answers that differed). With
# 2-7 rows every row gets the logits it gets alone, bit for bit, base and LoRA (measured with
# llama-cpp-python 0.3.36, tests/test_scheduler.py).
EXACT_ROWS = 7
# The same limit where the weights are repacked (ggml's "extra buffer" matmuls, the default of
# llama.cpp's CPU backend): a repacked matmul takes the rows of a call in fours (``ne11 -
# ne11 % 4``, ggml-cpu/repack.cpp) with a kernel that rounds differently from its one-row
# kernel, which takes the rest. So up to 3 rows each row gets its alone logits (tested).
REPACK_ROWS = 3


def repacks_rows_alike(system_info: bytes) -> bool:
    """True when llama.cpp's repacked CPU weights can be used with batches bit-equal to one
    row: a build with ggml's own repack kernels (exact up to :data:`REPACK_ROWS` rows), and no
    other extra buffer type (AMX, KleidiAI) whose kernels were never measured here; the AMX
    one also crashed in ``ggml_backend_amx_mul_mat`` on a machine of ours. Repacked weights
    decode one row 4-6% faster here (0.975x raw llama-cpp-python without, 1.04x with)."""
    return (b"REPACK = 1" in system_info and b"AMX" not in system_info
            and b"KLEIDIAI" not in system_info)

Row = tuple[int, Sequence[int], int]  # (sequence, tokens, first position)
Pad = tuple[int, int, int]  # (sequence, token, position)


def pick_lanes(env: str | None, cores: int, threads: int, gpu: bool) -> int:
    """Contexts decoding at the same time: ``LOCOLLM_LANES`` when set; one with a GPU (one
    device runs one call at a time); else as many as the physical cores hold ``threads`` each,
    at most two. Two lanes of one thread on a 2-core machine decode 1.8-2.1x the tokens/s of
    one (measured, ``bench/serve_load.py``); more lanes would split the batches further."""
    if env:
        return max(1, int(env))
    if gpu:
        return 1
    return max(1, min(2, cores // max(1, threads)))


class Context:
    """A llama.cpp context with its batch buffer: decode rows of (sequence, tokens, position).

    With a KV stream per sequence llama.cpp evaluates rows of consecutive sequence ids
    together (one micro-batch); the scheduler places requests accordingly. Sequence ids here
    are the context's own (0 .. n_seq-1). ``lock`` serializes calls on the context.
    """

    def __init__(self, model, *, n_ctx: int, n_seq: int, threads: int, flash: bool,
                 threads_batch: int | None = None) -> None:
        import llama_cpp

        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx * n_seq
        params.n_batch = n_ctx  # a whole prompt goes in one decode call
        params.n_ubatch = min(512, n_ctx)
        params.n_seq_max = n_seq
        params.n_threads = threads
        params.n_threads_batch = threads_batch or threads
        params.kv_unified = False  # a KV stream per sequence: its attention ignores the others
        params.swa_full = True  # keep every position, so a prefix can be cut back and reused
        params.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO if flash
                                  else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        params.no_perf = True
        self.ctx = llama_cpp.llama_init_from_model(model, params)
        if not self.ctx:
            raise RuntimeEngineError("llama.cpp could not create a context (out of memory?)",
                                     fix="lower --parallel or the context size")
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        # llama.cpp may round the context up; a prompt must also fit the batch buffer
        self.n_ctx = min(llama_cpp.llama_n_ctx_seq(self.ctx), n_ctx)
        self.n_seq = n_seq
        # a whole prompt, or a step of one row per sequence (pad rows included)
        self.batch = llama_cpp.llama_batch_init(max(n_ctx, n_seq), 0, 1)
        self.adapters: AdapterSet | None = None
        self.lock = threading.RLock()

    def decode(self, rows: Sequence[Row], all_logits: bool = False, logits: bool = True,
               pads: Sequence[Pad] = ()) -> list[int]:
        """Evaluate ``rows`` of (sequence, tokens, first position) in one call.

        Returns, per row, the batch index of its last token (whose logits are kept unless
        ``logits`` is False: then no vocabulary projection is computed at all). ``pads`` are
        more (sequence, token, position) rows, placed in sequence order, without logits.
        """
        import llama_cpp

        b, n, last = self.batch, 0, []
        todo = [(seq, tokens, pos, True) for seq, tokens, pos in rows]
        if pads:
            todo += [(seq, [token], pos, False) for seq, token, pos in pads]
            todo.sort(key=lambda row: row[0])
        for seq, tokens, pos, real in todo:
            for j, token in enumerate(tokens):
                b.token[n], b.pos[n], b.n_seq_id[n] = token, pos + j, 1
                b.seq_id[n][0] = seq
                b.logits[n] = real and (all_logits or (logits and j == len(tokens) - 1))
                n += 1
            if real:
                last.append(n - 1)
        b.n_tokens = n
        rc = llama_cpp.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeEngineError(f"llama.cpp could not decode the batch (code {rc})")
        return last

    def decode_padded(self, rows: Sequence[Row], adapted: bool, pad_lone: bool,
                      logits: bool = True) -> list[int]:
        """:meth:`decode` with the pad rows of :meth:`pad_rows`, removed right after."""
        pads = self.pad_rows(rows, adapted and pad_lone)
        try:
            return self.decode(rows, logits=logits, pads=pads)
        finally:
            self.drop_pads(pads)

    def pad_rows(self, rows: Sequence[Row], pad_lone: bool) -> list[Pad]:
        """Pad rows (sequence, token, position) for a call of one-token rows.

        llama.cpp evaluates only rows of consecutive sequences as one micro-batch, so each
        sequence between the call's first and last row gets a pad row (a row costs a few
        percent of a call): the call stays one micro-batch. Then, with ``pad_lone`` (an
        adapter call on a padding build, see ``Engine.pads_adapter_rows``), a row still alone
        gets one next to it. A pad goes at its sequence's next position, when that sequence
        has room.
        """
        if any(len(tokens) != 1 for _, tokens, _ in rows):
            return []  # a prompt: a call of its own, many rows already
        token = rows[0][1][0]
        seqs = {seq for seq, _, _ in rows}
        pads = [(other, token, pos) for other in range(min(seqs), max(seqs) + 1)
                if other not in seqs and (pos := self.next_position(other)) is not None]
        if pad_lone:
            taken = seqs | {pad[0] for pad in pads}
            for seq in sorted(seqs):
                if seq - 1 in taken or seq + 1 in taken:
                    continue
                for other in (seq + 1, seq - 1):
                    pos = self.next_position(other) if other not in taken else None
                    if pos is not None:  # else the context is full: this row rounds alone
                        pads.append((other, token, pos))
                        taken.add(other)
                        break
        return pads

    def next_position(self, seq: int) -> int | None:
        """Where a pad row of ``seq`` goes: its next position; None without room or seq."""
        import llama_cpp

        if not 0 <= seq < self.n_seq:
            return None
        pos = llama_cpp.llama_memory_seq_pos_max(self.memory, seq) + 1
        return pos if pos < self.n_ctx else None

    def drop_pads(self, pads: Sequence[Pad]) -> None:
        import llama_cpp

        for seq, _, pos in pads:
            if not llama_cpp.llama_memory_seq_rm(self.memory, seq, pos, -1):
                raise RuntimeEngineError(f"llama.cpp could not remove a pad row of sequence "
                                         f"{seq}")

    def forget(self, seq: int, keep: int = 0) -> bool:
        """Drop ``seq`` from the KV memory from position ``keep`` on; False when the memory
        cannot cut it there (then the whole sequence is dropped)."""
        import llama_cpp

        with self.lock:
            if keep > 0 and llama_cpp.llama_memory_seq_rm(self.memory, seq, keep, -1):
                return True
            llama_cpp.llama_memory_seq_rm(self.memory, seq, -1, -1)
            return keep == 0

    def clear(self) -> None:
        """Empty the KV memory of every sequence."""
        import llama_cpp

        with self.lock:
            llama_cpp.llama_memory_clear(self.memory, True)

    def close(self) -> None:
        import llama_cpp

        if self.ctx:
            llama_cpp.llama_batch_free(self.batch)
            llama_cpp.llama_free(self.ctx)
            self.ctx = None
