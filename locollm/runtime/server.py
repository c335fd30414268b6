"""``locollm serve``: an OpenAI-compatible HTTP server over one base and hot-swapped adapters.

Endpoints::

    GET  /health                 status, base, loaded adapters, the adapter applied now
    GET  /v1/models              the base, each adapter, and "auto" (the keyword router)
    GET  /lora-adapters          the loaded LoRA GGUFs (llama.cpp server's endpoint)
    POST /v1/completions         raw prompt in, raw continuation out
    POST /v1/chat/completions    the last user message is one turn in the one prompt format

The request's ``model`` picks the adapter: an adapter's name, the base's name (or ``base``) for
no adapter, or ``auto`` to let the router choose from the prompt. ``stream: true`` answers with
server-sent events. The base is loaded once; llama.cpp's context is not thread-safe, so every
generation holds one lock and requests queue. Bad requests get OpenAI-style JSON errors (400,
404, 405, 413), never a traceback. Standard library only (``http.server``).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .. import __version__
from ..adapter.meta import lora_gguf_path
from ..errors import AdapterError, LocollmError
from ..prompt import PromptFormat, parse_response
from .chat import turn_prompt
from .engine import Completion
from .router import Route
from .session import Runtime

MAX_BODY = 1 << 20  # bytes; prompts are small, anything larger is a mistake
AUTO = "auto"
BASE_ALIAS = "base"
ROLES = ("system", "developer", "user", "assistant", "tool")


class APIError(Exception):
    """A request the server refuses, rendered as OpenAI's ``{"error": {...}}``."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = (
            status, message, param, code, kind)

    def body(self) -> dict:
        """The JSON error object."""
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}


# ------------------------------------------------------------------------- request parsing
@dataclass
class Settings:
    """Sampling settings common to both generation endpoints."""

    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    stream: bool


def _number(body: dict, key: str, default: float, low: float, high: float,
            integer: bool = False) -> Any:
    value = body.get(key)
    if value is None:
        return default
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise APIError(400, f"'{key}' must be {what} from {low} to {high}, got {value!r}",
                       param=key)
    return value


def parse_settings(body: dict, max_key: str = "max_tokens") -> Settings:
    """Validate the sampling fields; unknown fields are ignored as OpenAI clients send many."""
    if body.get("n") not in (None, 1):
        raise APIError(400, "only n=1 is supported", param="n")
    for key in ("echo", "logprobs", "suffix"):
        if body.get(key):
            raise APIError(400, f"'{key}' is not supported", param=key)
    stop = body.get("stop")
    stop = [stop] if isinstance(stop, str) else stop
    if stop is not None and not (isinstance(stop, list) and len(stop) <= 4 and
                                 all(isinstance(s, str) and s for s in stop)):
        raise APIError(400, "'stop' must be a string or a list of up to 4 strings", param="stop")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise APIError(400, "'stream' must be true or false", param="stream")
    max_tokens = _number(body, max_key, None, 1, 1 << 20, integer=True)
    if max_tokens is None:
        max_tokens = _number(body, "max_tokens", 256, 1, 1 << 20, integer=True)
    return Settings(max_tokens, float(_number(body, "temperature", 0.0, 0, 2)),
                    float(_number(body, "top_p", 1.0, 0, 1)), tuple(stop or ()), stream)


def parse_prompt(body: dict) -> str:
    """The prompt of a completion request: a string, or a list holding one."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise APIError(400, "'prompt' must be a string (or a list of one string)",
                       param="prompt")
    return prompt


def _content(message: dict, index: int) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        if not all(isinstance(p, dict) and p.get("type") == "text" and
                   isinstance(p.get("text"), str) for p in content):
            raise APIError(400, f"messages[{index}]: only text content is supported",
                           param="messages")
        content = "".join(p["text"] for p in content)
    if not isinstance(content, str):
        raise APIError(400, f"messages[{index}].content must be a string", param="messages")
    return content


def parse_messages(body: dict) -> tuple[str | None, str]:
    """(instruction from system messages or None, the last user message).

    One turn per request: earlier user/assistant turns are not part of the prompt, as the
    adapters are trained on single (instruction, input) pairs.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "'messages' must be a non-empty list", param="messages")
    system, texts = [], []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise APIError(400, f"messages[{i}] needs a role, one of {', '.join(ROLES)}",
                           param="messages")
        texts.append(_content(message, i))
        if message["role"] in ("system", "developer"):
            system.append(texts[-1].strip())
    if messages[-1]["role"] != "user" or not texts[-1].strip():
        raise APIError(400, "the last message must be a non-empty user message",
                       param="messages")
    return "\n\n".join(s for s in system if s) or None, texts[-1].strip()


def _json_body(handler: BaseHTTPRequestHandler) -> dict:
    length = handler.headers.get("Content-Length")
    if length is None or not length.isdigit():
        raise APIError(411, "a JSON body with a Content-Length header is required")
    if int(length) > MAX_BODY:
        handler.close_connection = True
        raise APIError(413, f"body over {MAX_BODY} bytes")
    raw = handler.rfile.read(int(length))
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise APIError(400, f"could not parse the JSON body ({exc})") from exc
    if not isinstance(body, dict):
        raise APIError(400, "the JSON body must be an object")
    return body


# ---------------------------------------------------------------------------------- service
def usage(out: Completion) -> dict:
    """OpenAI's token counts of a completion."""
    return {"prompt_tokens": out.prompt_tokens, "completion_tokens": out.completion_tokens,
            "total_tokens": out.prompt_tokens + out.completion_tokens}


@dataclass
class Job:
    """A validated generation request, ready for the engine."""

    chat: bool
    model: str  # the id answered with
    adapter: str | None
    route: Route | None
    prompt: str
    fmt: PromptFormat
    settings: Settings
    id: str = ""  # the response id, shared by every chunk of a stream

    def __post_init__(self) -> None:
        self.id = self.id or ("chatcmpl-" if self.chat else "cmpl-") + uuid.uuid4().hex[:24]


class Service:
    """What the HTTP handler asks for; owns the lock around the engine."""

    def __init__(self, runtime: Runtime) -> None:
        for name in runtime.metas:
            if name in (AUTO, BASE_ALIAS, runtime.base_name):
                raise AdapterError(f"an adapter may not be named {name!r} (a model id the "
                                   "server reserves)", file=runtime.folders.get(name),
                                   fix="rename the adapter folder and its metadata")
        self.runtime = runtime
        self.lock = threading.Lock()
        self.started = int(time.time())
        self.closed = False

    def close(self) -> None:
        """Free the runtime once the generation in flight (if any) is done."""
        with self.lock:
            self.closed = True
            self.runtime.close()

    @property
    def base(self) -> str:
        """The base model's id."""
        return self.runtime.base_name

    def health(self) -> dict:
        """Liveness and what is loaded."""
        return {"status": "ok", "base_model": self.base, "adapters": list(self.runtime.metas),
                "active": self.runtime.engine.active, "version": __version__}

    def models(self) -> dict:
        """OpenAI's model list: the base, the adapters, and ``auto``."""
        def row(model_id: str, **extra: Any) -> dict:
            return {"id": model_id, "object": "model", "created": self.started,
                    "owned_by": "locollm", **extra}

        data = [row(self.base)]
        data += [row(name, parent=self.base, root=self.base) for name in self.runtime.metas]
        data.append(row(AUTO, parent=self.base, root=self.base,
                        description="keyword router over the adapters"))
        return {"object": "list", "data": data}

    def lora_adapters(self) -> list[dict]:
        """The loaded LoRA GGUFs, in llama.cpp server's shape plus locollm's metadata."""
        active = self.runtime.engine.active
        folders = self.runtime.folders
        return [{"id": i, "name": name, "path": str(lora_gguf_path(folders[name]).resolve()),
                 "scale": 1.0 if name == active else 0.0, "active": name == active,
                 "base_model": meta.base_model, "lora_rank": meta.lora_rank,
                 "lora_alpha": meta.lora_alpha}
                for i, (name, meta) in enumerate(self.runtime.metas.items())]

    def pick(self, model: Any, text: str) -> tuple[str | None, Route | None]:
        """The adapter a ``model`` field names (None: base), routing ``text`` for ``auto``."""
        if not isinstance(model, str) or not model:
            raise APIError(400, "'model' must be a model id from /v1/models", param="model")
        if model == AUTO:
            route = self.runtime.router.route(text)
            return route.adapter, route
        if model in (self.base, BASE_ALIAS):
            return None, None
        if model in self.runtime.metas:
            return model, None
        ids = [self.base, *self.runtime.metas, AUTO]
        raise APIError(404, f"model {model!r} not found; available: {', '.join(ids)}",
                       param="model", code="model_not_found")

    def prepare(self, body: dict, chat: bool) -> Job:
        """Validate a request body into a :class:`Job` (raises :class:`APIError`)."""
        settings = parse_settings(body, "max_completion_tokens" if chat else "max_tokens")
        if chat:
            system, text = parse_messages(body)
        else:
            text = parse_prompt(body)
        adapter, route = self.pick(body.get("model"), text)
        fmt = self.runtime.prompt_format(adapter)
        if not chat:
            return Job(False, adapter or self.base, adapter, route, text, fmt, settings)
        instruction = system or self.runtime.instructions.get(adapter or "")
        try:
            prompt = turn_prompt(text, fmt, instruction)
        except ValueError as exc:  # an adapter with a prompt format this version cannot build
            raise APIError(400, str(exc), param="model") from exc
        settings.stop = tuple(dict.fromkeys(fmt.stop + settings.stop))
        return Job(True, adapter or self.base, adapter, route, prompt, fmt, settings)

    def run(self, job: Job, on_text: Callable[[str], object] | None = None) -> Completion:
        """Generate for ``job`` holding the engine lock."""
        s = job.settings
        with self.lock:
            if self.closed:
                raise APIError(503, "the server is shutting down", kind="server_error")
            return self.runtime.engine.complete(job.prompt, adapter=job.adapter,
                                                max_tokens=s.max_tokens,
                                                temperature=s.temperature, top_p=s.top_p,
                                                stop=s.stop, on_text=on_text)

    def response(self, job: Job, out: Completion) -> dict:
        """The OpenAI response object for a finished job."""
        if job.chat:
            choice = {"index": 0, "message": {"role": "assistant",
                                              "content": parse_response(out.text, job.fmt)},
                      "logprobs": None, "finish_reason": out.finish_reason}
        else:
            choice = {"text": out.text, "index": 0, "logprobs": None,
                      "finish_reason": out.finish_reason}
        return {**self.envelope(job), "choices": [choice], "usage": usage(out),
                "locollm": self.trace(job, out)}

    def envelope(self, job: Job) -> dict:
        """The fields every response and stream chunk of ``job`` starts with."""
        return {"id": job.id, "object": "chat.completion" if job.chat else "text_completion",
                "created": int(time.time()), "model": job.model}

    @staticmethod
    def trace(job: Job, out: Completion | None = None) -> dict:
        """locollm's extra field: the adapter used, why, and the generation time."""
        info: dict[str, Any] = {"adapter": job.adapter}
        if job.route is not None:
            info["route"] = job.route.reason()
            info["matched"] = list(job.route.matched)
        if out is not None:
            info["latency_s"] = round(out.latency_s, 4)
        return info


# ------------------------------------------------------------------------------------- HTTP
class Handler(BaseHTTPRequestHandler):
    """Routes requests to the :class:`Service`; every failure becomes a JSON error."""

    server_version = f"locollm/{__version__}"
    server: LocoServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        service = self.server.service
        path = urlsplit(self.path).path.rstrip("/") or "/"
        gets: dict[str, Callable[[], Any]] = {
            "/health": service.health, "/v1/models": service.models,
            "/lora-adapters": service.lora_adapters}
        posts = {"/v1/completions": False, "/v1/chat/completions": True}
        try:
            if path.startswith("/v1/models/") and method == "GET":
                self._send(200, self._model(path.removeprefix("/v1/models/")))
            elif path in gets or path in posts:
                allowed = "GET" if path in gets else "POST"
                if method != allowed:
                    raise APIError(405, f"{path} takes {allowed}, not {method}")
                if path in gets:
                    self._send(200, gets[path]())
                else:
                    self._generate(service, posts[path])
            else:
                raise APIError(404, f"no endpoint {path}", kind="not_found_error")
        except APIError as exc:
            self._send(exc.status, exc.body())
        except LocollmError as exc:  # the engine refused the input (e.g. prompt too long)
            self._send(400, APIError(400, exc.render()).body())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client left
        except Exception as exc:  # a bug: say so without a traceback, log one line
            self.log_error("internal error on %s: %r", path, exc)
            self._send(500, APIError(500, f"internal error ({type(exc).__name__})",
                                     kind="server_error").body())

    def _model(self, model_id: str) -> dict:
        for row in self.server.service.models()["data"]:
            if row["id"] == model_id:
                return row
        raise APIError(404, f"model {model_id!r} not found", code="model_not_found")

    def _generate(self, service: Service, chat: bool) -> None:
        job = service.prepare(_json_body(self), chat)
        if not job.settings.stream:
            self._send(200, service.response(job, service.run(job)))
            return
        stream = EventStream(self, service, job)
        out = service.run(job, stream.text)
        stream.finish(out)

    def _send(self, status: int, body: Any) -> None:
        if getattr(self, "_streaming", False):
            return  # headers are gone: the stream just ends
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None
                   ) -> None:
        """http.server's own refusals (bad request line, unknown method) as JSON too."""
        self.close_connection = True
        self._send(code, APIError(code, message or explain or "bad request").body())

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base signature)
        if self.server.verbose:
            super().log_message(format, *args)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        sys.stderr.write(f"locollm serve: {format % args}\n")


class EventStream:
    """Server-sent events for one streamed job; headers go out with the first piece of text,
    so an error before any output still gets a proper JSON error response."""

    def __init__(self, handler: Handler, service: Service, job: Job) -> None:
        self.handler, self.service, self.job = handler, service, job
        self.started = False
        self.seen_text = False

    def _start(self) -> None:
        if self.started:
            return
        h = self.handler
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.end_headers()
        h._streaming = True
        self.started = True
        if self.job.chat:
            self._event({"delta": {"role": "assistant", "content": ""}})

    def _event(self, choice: dict, **extra: Any) -> None:
        chunk = self.service.envelope(self.job)
        if self.job.chat:
            chunk["object"] = "chat.completion.chunk"
        chunk.update(choices=[{"index": 0, "logprobs": None, "finish_reason": None, **choice}],
                     **extra)
        self.handler.wfile.write(b"data: " + json.dumps(chunk).encode("utf-8") + b"\n\n")
        self.handler.wfile.flush()

    def text(self, piece: str) -> None:
        """One generated piece (the chat answer is stripped at its start, as when whole)."""
        self._start()
        if self.job.chat and not self.seen_text:
            piece = piece.lstrip()
        if not piece:
            return
        self.seen_text = True
        self._event({"delta": {"content": piece}} if self.job.chat else {"text": piece})

    def finish(self, out: Completion) -> None:
        """The closing chunk (finish reason, usage, locollm's trace), then ``[DONE]``."""
        self._start()
        choice = {"delta": {}} if self.job.chat else {"text": ""}
        self._event({**choice, "finish_reason": out.finish_reason}, usage=usage(out),
                    locollm=self.service.trace(self.job, out))
        self.handler.wfile.write(b"data: [DONE]\n\n")
        self.handler.wfile.flush()


class LocoServer(ThreadingHTTPServer):
    """A threading HTTP server that carries the :class:`Service`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], service: Service, verbose: bool = False):
        super().__init__(address, Handler)
        self.service = service
        self.verbose = verbose

    def server_close(self) -> None:
        """Stop listening, then free the runtime (waiting for a generation in flight: handler
        threads outlive ``shutdown()``, and freeing llama.cpp under one would crash)."""
        super().server_close()
        self.service.close()

    @property
    def url(self) -> str:
        """Base URL of the OpenAI API, e.g. ``http://127.0.0.1:8000/v1``."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"


def make_server(runtime: Runtime, host: str = "127.0.0.1", port: int = 8000,
                verbose: bool = False) -> LocoServer:
    """Bind the server (port 0: any free port); call ``serve_forever()`` to run it.

    ``server_close()`` closes ``runtime`` too.
    """
    try:
        return LocoServer((host, port), Service(runtime), verbose)
    except OSError as exc:
        raise LocollmError(f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                           fix="pick another --port, or stop what holds it") from exc
