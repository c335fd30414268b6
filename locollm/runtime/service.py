"""What ``locollm serve`` does with a request, apart from HTTP: model ids, validation, answers.

:class:`ServeConfig` is how the server listens and what it allows; :class:`Service` turns a
parsed OpenAI request into a :class:`Job` (the adapter set, the prompt in the right format, one
:class:`~locollm.runtime.generation.GenRequest` per choice), hands it to the scheduler and
shapes the OpenAI response objects. ``runtime/server.py`` puts it behind FastAPI.
"""

from __future__ import annotations

import ipaddress
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..adapter.meta import lora_gguf_path
from ..errors import AdapterError, LocollmError
from ..prompt import PromptFormat, parse_response
from .api import APIError, ChatRequest, CompletionRequest
from .conversation import ConversationError, Message, conversation_prompt
from .generation import AdapterSet, Completion, GenRequest, adapter_label
from .router import Route
from .scheduler import QueueFull, ShuttingDown, Ticket

if TYPE_CHECKING:
    from .session import Runtime

AUTO = "auto"
BASE_ALIAS = "base"
API_KEY_ENV = "LOCOLLM_API_KEY"


@dataclass
class ServeConfig:
    """How the server listens and what it allows."""

    host: str = "127.0.0.1"  # interface; anything but loopback needs api_key
    port: int = 8000  # 0: any free port
    api_key: str | None = None  # clients send "Authorization: Bearer KEY"; None: no check
    cors: tuple[str, ...] = ()  # origins allowed by CORS ("*" for any); empty: CORS off
    max_body: int = 1 << 20  # bytes of a request body (413 beyond)
    max_tokens: int = 4096  # most tokens one request may ask for (400 beyond)
    max_queue: int = 64  # requests waiting for a free sequence (429 beyond)
    request_timeout_s: float = 300.0  # generation time of one request (then finish "length")
    max_connections: int = 128  # open connections (uvicorn answers 503 beyond)
    keep_alive_s: int = 5  # idle keep-alive connection timeout
    verbose: bool = False  # log every request

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise LocollmError(f"port {self.port} is out of range", fix="use 0 to 65535")
        if not is_loopback(self.host) and not self.api_key:
            raise LocollmError(f"listening on {self.host} lets anyone who reaches it use the "
                               "models", fix=f"pass --api-key KEY (or set {API_KEY_ENV}), or "
                               "keep --host 127.0.0.1")


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Job:
    """A validated generation request: what to run and how to answer."""

    chat: bool
    model: str  # the id answered with
    adapters: AdapterSet
    route: Route | None
    fmt: PromptFormat
    requests: list[GenRequest]  # one per choice (n)
    stream: bool
    include_usage: bool
    id: str = field(default="")

    def __post_init__(self) -> None:
        self.id = self.id or ("chatcmpl-" if self.chat else "cmpl-") + uuid.uuid4().hex[:24]


def usage(outs: list[Completion]) -> dict:
    """OpenAI's token counts (the prompt counted once for all choices)."""
    prompt = outs[0].prompt_tokens if outs else 0
    done = sum(o.completion_tokens for o in outs)
    return {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}


class Service:
    """What the HTTP routes ask for: model ids, request validation, submission, responses."""

    def __init__(self, runtime: Runtime, config: ServeConfig | None = None) -> None:
        for name in runtime.metas:
            if name in (AUTO, BASE_ALIAS, runtime.base_name) or "+" in name:
                raise AdapterError(f"an adapter may not be named {name!r} (a model id the "
                                   "server reserves)", file=runtime.folders.get(name),
                                   fix="rename the adapter folder and its metadata")
        self.runtime = runtime
        self.config = config or ServeConfig()
        self.scheduler = runtime.engine.scheduler
        self.scheduler.max_queue = self.config.max_queue
        self.started = int(time.time())
        self.owns_runtime = True  # close the runtime when the server stops
        self._closed = False
        self._close_lock = threading.Lock()

    def close(self) -> None:
        """Finish the requests accepted, then free the runtime (once)."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self.runtime.close()

    @property
    def base(self) -> str:
        """The base model's id."""
        return self.runtime.base_name

    # ------------------------------------------------------------------ read-only endpoints
    def health(self) -> dict:
        """Liveness and what is loaded."""
        engine = self.runtime.engine
        return {"status": "ok", "base_model": self.base, "adapters": list(self.runtime.metas),
                "active": engine.active, "running": self.scheduler.running,
                "waiting": self.scheduler.waiting, "parallel": len(self.scheduler.slots),
                "version": __version__}

    def models(self) -> dict:
        """OpenAI's model list: the base, the adapters, and ``auto``."""
        def row(model_id: str, **extra: Any) -> dict:
            return {"id": model_id, "object": "model", "created": self.started,
                    "owned_by": "locollm", **extra}

        data = [row(self.base)]
        data += [row(name, parent=self.base, root=self.base) for name in self.runtime.metas]
        data.append(row(AUTO, parent=self.base, root=self.base,
                        description=f"{self.runtime.router_name} router over the adapters"))
        return {"object": "list", "data": data}

    def model(self, model_id: str) -> dict:
        """One row of :meth:`models`."""
        for row in self.models()["data"]:
            if row["id"] == model_id:
                return row
        raise APIError(404, f"model {model_id!r} not found", param="model",
                       code="model_not_found")

    def lora_adapters(self) -> list[dict]:
        """The loaded LoRA GGUFs, in llama.cpp server's shape plus locollm's metadata."""
        active = dict(self.runtime.engine.active_set)
        folders = self.runtime.folders
        return [{"id": i, "name": name, "path": str(lora_gguf_path(folders[name]).resolve()),
                 "scale": active.get(name, 0.0), "active": name in active,
                 "base_model": meta.base_model, "lora_rank": meta.lora_rank,
                 "lora_alpha": meta.lora_alpha}
                for i, (name, meta) in enumerate(self.runtime.metas.items())]

    # ------------------------------------------------------------------ generation
    def pick(self, request: CompletionRequest | ChatRequest, text: str
             ) -> tuple[AdapterSet, str, Route | None]:
        """(adapter set, model id to answer with, route) for the request's model fields."""
        model, metas = request.model, self.runtime.metas
        if request.adapters:
            if model not in (self.base, BASE_ALIAS):
                raise APIError(400, f"with 'adapters' the model must be {self.base!r} (or "
                               f"'base'), not {model!r}", param="model")
            for weight in request.adapters:
                if weight.name not in metas:
                    raise APIError(404, f"adapter {weight.name!r} is not loaded; loaded: "
                                   f"{', '.join(metas) or 'none'}", param="adapters",
                                   code="model_not_found")
            chosen = GenRequest("", adapters=[(w.name, w.scale) for w in request.adapters]
                                ).adapter_set()
            return chosen, adapter_label(chosen) or self.base, None
        if model == AUTO:
            route = self.runtime.router.route(text)
            chosen = ((route.adapter, 1.0),) if route.adapter else ()
            return chosen, route.adapter or self.base, route
        if model in (self.base, BASE_ALIAS):
            return (), self.base, None
        names = model.split("+")
        if all(name in metas for name in names):
            chosen = tuple(sorted((name, 1.0) for name in set(names)))
            return chosen, model, None
        ids = [self.base, *metas, AUTO]
        raise APIError(404, f"model {model!r} not found; available: {', '.join(ids)} (or "
                       "adapters joined with '+')", param="model", code="model_not_found")

    def prepare(self, request: CompletionRequest | ChatRequest, chat: bool) -> Job:
        """Validate a parsed request into a :class:`Job` (raises :class:`APIError`)."""
        from .engine import json_grammar

        if chat:
            messages = [Message(m.role, m.text()) for m in request.messages]
            users = [m.content for m in messages if m.role == "user"]
            text = users[-1] if users else ""
        else:
            text = request.text()
        adapters, model_id, route = self.pick(request, text)
        first = adapters[0][0] if adapters else None
        fmt = self.runtime.prompt_format(first)
        stops = request.stops()
        if chat:
            instruction = self.runtime.instructions.get(first) if len(adapters) == 1 else None
            engine = self.runtime.engine
            try:
                prompt = conversation_prompt(messages, fmt, instruction, engine.chat_template,
                                             engine.bos_text, engine.eos_text)
            except (ConversationError, ValueError) as exc:
                raise APIError(400, exc.render() if isinstance(exc, LocollmError) else str(exc),
                               param="messages") from exc
            stops = tuple(dict.fromkeys(fmt.stop + stops))
            limit = request.limit()
        else:
            prompt, limit = text, request.max_tokens
        limit = limit or min(256, self.config.max_tokens)
        if limit > self.config.max_tokens:
            raise APIError(400, f"max_tokens {limit} is over this server's limit of "
                           f"{self.config.max_tokens}", param="max_tokens")
        grammar = None
        response_format = getattr(request, "response_format", None)
        if response_format is not None and response_format.type != "text":
            schema = response_format.json_schema.schema_ if response_format.json_schema else None
            try:
                grammar = json_grammar(schema)
            except LocollmError as exc:
                raise APIError(400, exc.render(), param="response_format") from exc
        vocab = self.runtime.engine.n_vocab
        bias = request.token_bias()
        if any(t >= vocab for t in bias):
            raise APIError(400, f"logit_bias names a token id over the vocabulary of {vocab}",
                           param="logit_bias")
        requests = [GenRequest(prompt, max_tokens=limit,
                               temperature=request.temperature or 0.0,
                               top_p=1.0 if request.top_p is None else request.top_p,
                               stop=stops, seed=None if request.seed is None
                               else request.seed + i, adapters=adapters,
                               presence_penalty=request.presence_penalty,
                               frequency_penalty=request.frequency_penalty, logit_bias=bias,
                               grammar=grammar, time_limit_s=self.config.request_timeout_s)
                    for i in range(request.n)]
        if request.seed is None and request.n > 1:  # n different draws, still reproducible
            for i, r in enumerate(requests):
                r.seed = self.runtime.engine.config.seed + i
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return Job(chat, model_id, adapters, route, fmt, requests, request.stream,
                   include_usage)

    def submit(self, job: Job, listener: Callable[[int, str, Any], object]) -> list[Ticket]:
        """Hand the job's requests to the scheduler; ``listener(choice, kind, value)``."""
        tickets: list[Ticket] = []
        try:
            for i, request in enumerate(job.requests):
                tickets.append(self.scheduler.submit(
                    request, listener=lambda kind, value, i=i: listener(i, kind, value)))
        except QueueFull as exc:
            for ticket in tickets:
                ticket.cancel()
            raise APIError(429, f"the server is busy ({exc.problem.message}); retry shortly",
                           kind="rate_limit_error", code="rate_limit_exceeded",
                           headers={"Retry-After": "1"}) from exc
        except ShuttingDown as exc:
            for ticket in tickets:
                ticket.cancel()
            raise APIError(503, "the server is shutting down", kind="server_error",
                           headers={"Retry-After": "5"}) from exc
        except LocollmError as exc:  # e.g. a prompt over the context
            for ticket in tickets:
                ticket.cancel()
            raise APIError(400, exc.render(), param="messages" if job.chat else "prompt"
                           ) from exc
        return tickets

    def answer(self, job: Job, out: Completion) -> str:
        """The text a choice answers with (chat: cut and stripped as the format says)."""
        return parse_response(out.text, job.fmt) if job.chat else out.text

    def response(self, job: Job, outs: list[Completion]) -> dict:
        """The OpenAI response object for a finished job."""
        choices = []
        for i, out in enumerate(outs):
            if job.chat:
                choices.append({"index": i, "message": {"role": "assistant",
                                                        "content": self.answer(job, out)},
                                "logprobs": None, "finish_reason": out.finish_reason})
            else:
                choices.append({"text": out.text, "index": i, "logprobs": None,
                                "finish_reason": out.finish_reason})
        return {**self.envelope(job), "choices": choices, "usage": usage(outs),
                "locollm": self.trace(job, outs)}

    def envelope(self, job: Job, chunk: bool = False) -> dict:
        """The fields every response and stream chunk of ``job`` starts with."""
        kind = "chat.completion" if job.chat else "text_completion"
        return {"id": job.id, "object": kind + (".chunk" if chunk and job.chat else ""),
                "created": int(time.time()), "model": job.model, "system_fingerprint": None}

    @staticmethod
    def trace(job: Job, outs: list[Completion] | None = None) -> dict:
        """locollm's extra field: the adapters used, why, and the generation time."""
        info: dict[str, Any] = {"adapter": adapter_label(job.adapters),
                                "adapters": [{"name": n, "scale": s} for n, s in job.adapters]}
        if job.route is not None:
            info["route"] = job.route.reason()
            info["matched"] = list(job.route.matched)
        if outs:
            info["latency_s"] = round(max(o.latency_s for o in outs), 4)
        return info
