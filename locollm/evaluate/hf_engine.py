"""Training precision: the PEFT adapter on the base's training weights, decoded by transformers.

``locollm eval --runtime transformers`` scores through this engine so the served GGUF (the
quantized base in llama.cpp with the LoRA GGUF) can be set beside the model as it was trained
(the dequantized base in float32 with the PEFT weights); the difference is the drift the export
and quantization cost. It answers ``complete`` and ``complete_batch`` like the llama.cpp engine:
greedy, prompts batched with left padding, each answer cut at its stop strings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..adapter.meta import AdapterMeta, load_meta
from ..errors import AdapterError
from ..models import BaseModel, resolve, training_dir
from ..runtime.engine import Completion


class TransformersEngine:
    """A base model and its PEFT adapters in transformers, at training precision (float32)."""

    precision = "float32"

    def __init__(self, base_model: str | None, adapter_dirs: list[Path] | None = None,
                 batch_size: int = 8) -> None:
        """Load the base's training weights and every adapter's PEFT files.

        Raises:
            AdapterError: an adapter folder has no PEFT weights, or was trained on another base.
        """
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..train.loading import quiet_load, torch_env

        torch_env()
        self.metas: dict[str, AdapterMeta] = {}
        dirs = [Path(d) for d in adapter_dirs or []]
        metas = [load_meta(d) for d in dirs]
        wanted = base_model or next((m.base_model for m in metas), None)
        self.base: BaseModel = resolve(wanted)
        for folder, meta in zip(dirs, metas, strict=True):
            if not (folder / "adapter_model.safetensors").exists():
                raise AdapterError("no PEFT weights (adapter_model.safetensors) to score at "
                                   "training precision", file=folder,
                                   fix="train it with `locollm train`, or use --runtime "
                                       "llama.cpp")
            if meta.base_sha256 and self.base.sha256 and meta.base_sha256 != self.base.sha256:
                raise AdapterError(f"adapter {meta.name!r} was trained on another base",
                                   file=folder, fix="use its base model")
        self.model_dir = training_dir(self.base)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        with quiet_load():
            model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
        for folder, meta in zip(dirs, metas, strict=True):
            from peft import PeftModel

            if not self.metas:
                model = PeftModel.from_pretrained(model, str(folder), adapter_name=meta.name)
            else:
                model.load_adapter(str(folder), adapter_name=meta.name)
            self.metas[meta.name] = meta
        self.model = model.eval()
        self.batch_size = max(1, batch_size)

    def complete(self, prompt: str, *, adapter: str | None = None, max_tokens: int = 256,
                 temperature: float = 0.0, stop: Sequence[str] = (), **_: object) -> Completion:
        """One greedy completion (``temperature`` is ignored: this engine only decodes greedily)."""
        from .decode import Request

        return self.complete_batch([Request(prompt, adapter, max_tokens, stop=tuple(stop))])[0]

    def complete_batch(self, requests: Sequence, on_done: Callable[[int, Completion], object]
                       | None = None) -> list[Completion]:
        """Greedy completions, batched per adapter; ``on_done(i, c)`` as each batch finishes."""
        out: list[Completion | None] = [None] * len(requests)
        groups: dict[str | None, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.adapter, []).append(i)
        for adapter, rows in groups.items():
            for start in range(0, len(rows), self.batch_size):
                chunk = rows[start:start + self.batch_size]
                for i, completion in zip(chunk, self._generate([requests[i] for i in chunk],
                                                                adapter), strict=True):
                    out[i] = completion
                    if on_done is not None:
                        on_done(i, completion)
        return out  # type: ignore[return-value]

    def _adapter_context(self, adapter: str | None):
        import contextlib

        if adapter is None:
            if self.metas:
                return self.model.disable_adapter()
            return contextlib.nullcontext()
        if adapter not in self.metas:
            raise AdapterError(f"adapter {adapter!r} is not loaded",
                               fix=f"loaded adapters: {sorted(self.metas) or 'none'}")
        self.model.set_adapter(adapter)
        return contextlib.nullcontext()

    def _generate(self, requests: Sequence, adapter: str | None) -> list[Completion]:
        import torch

        start = time.perf_counter()
        enc = self.tokenizer([r.prompt for r in requests], return_tensors="pt", padding=True)
        stops = sorted({s for r in requests for s in r.stop if s})
        longest = max(r.max_tokens for r in requests)
        with torch.no_grad(), self._adapter_context(adapter):
            generated = self.model.generate(
                **enc, max_new_tokens=longest, do_sample=False, num_beams=1,
                pad_token_id=self.tokenizer.pad_token_id, stop_strings=stops or None,
                tokenizer=self.tokenizer, temperature=None, top_p=None, top_k=None)
        latency = (time.perf_counter() - start) / len(requests)
        width = enc["input_ids"].shape[1]
        done = []
        ends = self._end_ids()
        for n, (row, r) in enumerate(zip(generated, requests, strict=True)):
            new = row[width:][: r.max_tokens].tolist()
            cut = next((k for k, t in enumerate(new) if t in ends), len(new))
            text = self.tokenizer.decode(new[:cut], skip_special_tokens=True)
            finish = "stop" if cut < len(new) or cut < r.max_tokens else "length"
            prompt_tokens = int(enc["attention_mask"][n].sum())
            done.append(Completion(text, prompt_tokens, cut, latency, finish, adapter))
        return done

    def _end_ids(self) -> set[int]:
        """Token ids that end an answer: the end-of-sequence ids and the padding after them."""
        config = getattr(self.model, "generation_config", None)
        ids = getattr(config, "eos_token_id", None) or self.tokenizer.eos_token_id
        ends = set(ids) if isinstance(ids, list) else {ids}
        return (ends | {self.tokenizer.pad_token_id}) - {None}

    def close(self) -> None:
        """Free the model."""
        self.model = None
