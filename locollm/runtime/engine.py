"""The only module that touches llama.cpp.

The base GGUF is loaded once; LoRA GGUFs are loaded with the low-level adapter API and swapped
per request on the live context. Two traps handled here:

* ``Llama(lora_path=...)`` on a bad adapter can crash the process, so each adapter file is
  validated (GGUF header, ``general.type = adapter``, matching architecture) before llama.cpp
  sees it, and the pointer ``llama_adapter_lora_init`` returns is checked.
* After every adapter switch the prompt cache and KV memory are reset, otherwise the cached
  prefix was computed by the other model and the output matches neither.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import AdapterError, RuntimeEngineError


def default_threads() -> int:
    """llama.cpp threads: ``LOCOLLM_THREADS``, else 1.

    On a small shared box one thread was far faster than two (no spinning against other
    work); on a laptop set ``LOCOLLM_THREADS`` to the number of performance cores.
    """
    value = os.environ.get("LOCOLLM_THREADS")
    return max(1, int(value)) if value else 1


def default_gpu_layers() -> int:
    """Layers llama.cpp offloads to the GPU: ``LOCOLLM_GPU_LAYERS`` (-1: all), else 0.

    Only a CUDA or Metal build of llama-cpp-python can offload (a CPU build ignores it); the
    Colab notebook sets -1 so eval runs on the T4.
    """
    value = os.environ.get("LOCOLLM_GPU_LAYERS", "").strip()
    try:
        return int(value) if value else 0
    except ValueError:
        raise RuntimeEngineError(f"LOCOLLM_GPU_LAYERS={value!r} is not a whole number",
                                 fix="set it to -1 (all layers), 0 (CPU) or a layer count"
                                 ) from None


@dataclass
class EngineConfig:
    """How the base model is loaded."""

    # Context window in tokens (prompt + answer).
    n_ctx: int = 2048
    # CPU threads; None reads LOCOLLM_THREADS, else 1.
    n_threads: int | None = None
    # Layers offloaded to a GPU build's GPU (-1: all); None reads LOCOLLM_GPU_LAYERS, else 0.
    n_gpu_layers: int | None = None
    # Keep logits for every position (only numeric verification needs it).
    logits_all: bool = False
    # Sampling seed.
    seed: int = 0
    # Reuse the KV cache of the previous prompt's shared prefix (same adapter). Off by default:
    # a prefix evaluated in an earlier batch rounds differently, so a greedy answer would depend
    # on the request before it (eval order, server traffic). On saves the shared prefix's
    # prompt evaluation: 15-20% of an 8-token answer in bench/adapter_switch.py.
    reuse_prefix: bool = False


@dataclass
class Completion:
    """One generated answer with its cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str
    adapter: str | None


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


class Engine:
    """A base GGUF loaded once, with named LoRA adapters hot-swapped per request."""

    def __init__(self, base_gguf: str | Path, config: EngineConfig | None = None) -> None:
        from llama_cpp import Llama

        from ..gguf.names import GGUFInfo

        quiet_llama_logs()
        self.config = config or EngineConfig()
        self.base_path = Path(base_gguf)
        threads = self.config.n_threads or default_threads()
        gpu_layers = self.config.n_gpu_layers
        try:
            self.llm = Llama(str(self.base_path), n_ctx=self.config.n_ctx, n_threads=threads,
                             n_threads_batch=threads, logits_all=self.config.logits_all,
                             seed=self.config.seed, verbose=False,
                             n_gpu_layers=default_gpu_layers() if gpu_layers is None
                             else gpu_layers)
        except (ValueError, RuntimeError) as exc:
            raise RuntimeEngineError(f"llama.cpp could not load the model ({exc})",
                                     file=self.base_path) from exc
        # llama.cpp has read the header already; gguf.GGUFReader (read_info) would parse the
        # whole 262k-token vocabulary in Python, about 10 s for Gemma 3 270M.
        meta = self.llm.metadata
        arch = meta.get("general.architecture", "?")
        self.info = GGUFInfo(arch, int(meta.get(f"{arch}.block_count", 0)),
                             meta.get("general.name", self.base_path.stem))
        self._adapters: dict[str, object] = {}
        self._active: tuple[str, float] | None = None

    @property
    def adapters(self) -> list[str]:
        """Names of the loaded adapters."""
        return sorted(self._adapters)

    @property
    def active(self) -> str | None:
        """Name of the adapter applied now, or None for the bare base."""
        return self._active[0] if self._active else None

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Validate and load a LoRA GGUF under ``name`` (not applied until :meth:`use`)."""
        import llama_cpp

        if name in self._adapters:
            return
        validate_adapter_file(path, self.info.architecture)
        pointer = llama_cpp.llama_adapter_lora_init(self.llm.model, str(path).encode())
        if not pointer:
            raise AdapterError("llama.cpp rejected the LoRA GGUF (shapes or tensor names do "
                               "not match this base)", file=path,
                               fix="re-export the adapter against this base model")
        self._adapters[name] = pointer

    def use(self, name: str | None, scale: float = 1.0) -> None:
        """Apply adapter ``name`` (None: bare base); reset the cache when anything changed."""
        import llama_cpp

        wanted = None if name is None else (name, scale)
        if wanted == self._active:
            return
        if name is not None and name not in self._adapters:
            raise AdapterError(f"adapter {name!r} is not loaded",
                               fix=f"loaded adapters: {self.adapters or 'none'}")
        if name is None:
            rc = llama_cpp.llama_set_adapters_lora(self.llm.ctx, None, 0, None)
        else:
            arr = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._adapters[name])
            scales = (ctypes.c_float * 1)(scale)
            rc = llama_cpp.llama_set_adapters_lora(self.llm.ctx, arr, 1, scales)
        if rc != 0:
            raise RuntimeEngineError(f"llama.cpp could not apply adapter {name!r} (code {rc})")
        self._active = wanted
        self.reset_cache()

    def reset_cache(self) -> None:
        """Forget the cached prompt prefix and clear the KV memory."""
        self.llm.reset()
        self.llm._ctx.kv_cache_clear()

    def tokenize(self, text: str, add_bos: bool = True) -> list[int]:
        """Tokens of ``text`` as llama.cpp sees them."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def complete(self, prompt: str, *, adapter: str | None = None, max_tokens: int = 256,
                 temperature: float = 0.0, top_p: float = 1.0,
                 stop: list[str] | tuple[str, ...] = (),
                 on_text: Callable[[str], object] | None = None) -> Completion:
        """Generate a continuation of ``prompt`` with ``adapter`` applied (None: base).

        With ``on_text`` the answer streams: each new piece of text (stop strings already cut)
        is passed to it as it is generated, and the whole Completion still comes back.
        """
        self.use(adapter)
        if not self.config.reuse_prefix:
            self.reset_cache()
        prompt_tokens = len(self.tokenize(prompt))
        if prompt_tokens + max_tokens > self.config.n_ctx:
            max_tokens = max(1, self.config.n_ctx - prompt_tokens)
            if prompt_tokens >= self.config.n_ctx:
                raise RuntimeEngineError(f"prompt is {prompt_tokens} tokens, over the context "
                                         f"of {self.config.n_ctx}", fix="shorten the prompt")
        start = time.perf_counter()
        settings = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
                    "stop": list(stop) or None, "seed": self.config.seed}
        if on_text is not None:
            return self._stream(prompt, prompt_tokens, settings, on_text)
        out = self.llm.create_completion(prompt, **settings)
        latency = time.perf_counter() - start
        choice = out["choices"][0]
        usage = out.get("usage", {})
        return Completion(choice["text"], usage.get("prompt_tokens", prompt_tokens),
                          usage.get("completion_tokens", 0), latency,
                          choice.get("finish_reason") or "stop", self.active)

    def _stream(self, prompt: str, prompt_tokens: int, settings: dict,
                on_text: Callable[[str], object]) -> Completion:
        start = time.perf_counter()
        pieces, finish = [], "stop"
        try:
            for chunk in self.llm.create_completion(prompt, stream=True, **settings):
                choice = chunk["choices"][0]
                if choice["text"]:
                    pieces.append(choice["text"])
                    on_text(choice["text"])
                finish = choice.get("finish_reason") or finish
        except BaseException:
            self.reset_cache()  # an abandoned generation (client gone) leaves the cache mid-answer
            raise
        text = "".join(pieces)
        # streamed chunks carry no usage: count the answer's tokens instead
        return Completion(text, prompt_tokens, len(self.tokenize(text, add_bos=False)),
                          time.perf_counter() - start, finish, self.active)

    def eos_token(self) -> int:
        """The model's end-of-sequence token id."""
        return self.llm.token_eos()

    def token_text(self, token: int) -> str:
        """The vocabulary text of ``token``."""
        return self.llm._model.token_get_text(token)

    def is_end_of_generation(self, token: int) -> bool:
        """Whether llama.cpp stops generating at ``token`` (EOS, EOT and their kin)."""
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token))

    def logits(self, tokens: list[int], adapter: str | None = None):
        """Logits (n_tokens x vocab, numpy) for ``tokens``; needs ``logits_all=True``."""
        if not self.config.logits_all:
            raise RuntimeEngineError("engine was built without logits_all")
        self.use(adapter)
        self.reset_cache()
        self.llm.eval(tokens)
        return self.llm.scores[: len(tokens)].copy()

    def close(self) -> None:
        """Free adapters and the model."""
        import llama_cpp

        if getattr(self, "llm", None) is None:
            return
        with contextlib.suppress(Exception):  # closing must not raise
            llama_cpp.llama_set_adapters_lora(self.llm.ctx, None, 0, None)
        self._adapters.clear()  # llama.cpp frees adapters with the model
        self.llm.close()
        self.llm = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
