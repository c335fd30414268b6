"""``locollm serve``: an OpenAI-compatible HTTP server over one base and its adapters.

Endpoints (FastAPI on uvicorn; the schema is at ``/openapi.json``, a browsable page at
``/docs``)::

    GET  /health                 status, base, loaded adapters, requests running and waiting
    GET  /v1/models              the base, each adapter, and "auto" (the router)
    GET  /lora-adapters          the loaded LoRA GGUFs (llama.cpp server's endpoint)
    POST /v1/completions         raw prompt in, raw continuation out
    POST /v1/chat/completions    the whole conversation, through the base's chat template or
                                 the adapter's prompt format (runtime/conversation.py)

The request's ``model`` picks the adapters: an adapter's name, several joined with ``+``
(``math+units``), the base's name (or ``base``) for none, or ``auto`` to let the router choose.
``adapters: [{"name", "scale"}]`` with model ``base`` applies a set with scales. Requests are
not serialized: each becomes a :class:`~locollm.runtime.scheduler.Ticket` and the scheduler
decodes all of them together, adapter set by adapter set; streaming answers flow back as
server-sent events, and a client that goes away cancels its generation.

Safe by default: 127.0.0.1 unless told; an API key is required to listen anywhere else; CORS
is off unless an origin is given; request bodies, ``max_tokens``, the waiting queue (429 with
Retry-After), open connections (503) and generation time are bounded; every error is OpenAI's
JSON, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from .. import __version__
from ..errors import LocollmError
from .api import APIError, ChatRequest, CompletionRequest
from .generation import Completion
from .scheduler import Cancelled, Ticket
from .service import (  # noqa: F401 (re-exported: the server's public names)
    API_KEY_ENV,
    AUTO,
    BASE_ALIAS,
    Job,
    ServeConfig,
    Service,
    is_loopback,
    usage,
)

if TYPE_CHECKING:
    from .session import Runtime

def _error(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def _validation_error(exc) -> APIError:
    """FastAPI's validation errors as one OpenAI 400 naming the first bad field."""
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return APIError(400, f"could not parse the JSON body ({first.get('msg', '')})")
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "model_attributes_type" or not loc and "dict" in first.get("msg", ""):
        return APIError(400, "the JSON body must be an object")
    param = loc[0] if loc else None
    where = ".".join(loc) or "body"
    message = first.get("msg", "invalid request")
    if first.get("type") == "extra_forbidden":
        message = "unrecognized request argument"
    return APIError(400, f"{where}: {message}", param=param)


class _BodyLimit:
    """Refuse request bodies over ``limit`` bytes with a 413, before any parsing."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await self._refuse(scope, send)
                return
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, send) -> None:
        response = JSONResponse(APIError(413, f"request body over {self.limit} bytes").body(),
                                status_code=413, headers={"Connection": "close"})
        await response(scope, None, send)


_BEARER = HTTPBearer(auto_error=False, description="the server's --api-key")


async def _check_key(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None,
                                                        Depends(_BEARER)]) -> None:
    """Refuse a request without the server's API key (when it has one) with a 401."""
    key = request.app.state.service.config.api_key
    if key is None:
        return
    if creds is None or not secrets.compare_digest(creds.credentials.encode(), key.encode()):
        raise APIError(401, "a valid API key is required (Authorization: Bearer KEY)",
                       kind="authentication_error", code="invalid_api_key",
                       headers={"WWW-Authenticate": "Bearer"})


def create_app(service: Service) -> FastAPI:
    """The FastAPI application over ``service`` (closes it on shutdown)."""
    config = service.config

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        if service.owns_runtime:
            await asyncio.to_thread(service.close)  # waits for generations in flight

    app = FastAPI(title="locollm", version=__version__, lifespan=lifespan,
                  description="OpenAI-compatible API over a base model and its LoRA adapters, "
                  "batched across adapters.")
    app.state.service = service
    guard = [Depends(_check_key)]

    @app.exception_handler(APIError)
    async def api_error(_request, exc: APIError):
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request, exc: RequestValidationError):
        return _error(_validation_error(exc))

    @app.exception_handler(HTTPException)
    async def http_error(_request, exc: HTTPException):
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        message = {404: "no such endpoint", 405: "method not allowed"}.get(
            exc.status_code, str(exc.detail))
        return _error(APIError(exc.status_code, message, kind=kind,
                               headers=dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        sys.stderr.write(f"locollm serve: internal error on {request.url.path}: {exc!r}\n")
        return JSONResponse(APIError(500, f"internal error ({type(exc).__name__})",
                                     kind="server_error").body(), status_code=500)

    @app.get("/health", dependencies=guard)
    async def health() -> dict:
        return service.health()

    @app.get("/v1/models", dependencies=guard)
    async def models() -> dict:
        return service.models()

    @app.get("/v1/models/{model_id}", dependencies=guard)
    async def model(model_id: str) -> dict:
        return service.model(model_id)

    @app.get("/lora-adapters", dependencies=guard)
    async def lora_adapters() -> list[dict]:
        return service.lora_adapters()

    @app.post("/v1/completions", dependencies=guard)
    async def completions(body: CompletionRequest, request: Request):
        return await _generate(service, service.prepare(body, chat=False), request)

    @app.post("/v1/chat/completions", dependencies=guard)
    async def chat_completions(body: ChatRequest, request: Request):
        return await _generate(service, service.prepare(body, chat=True), request)

    app.add_middleware(_BodyLimit, limit=config.max_body)
    if config.cors:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors),
                           allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type"])
    return app


async def _generate(service: Service, job: Job, request: Request):
    """Run ``job``: a JSON response, or server-sent events when it streams."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def listener(choice: int, kind: str, value: Any) -> None:  # the scheduler's thread
        if job.stream or kind != "text":
            loop.call_soon_threadsafe(events.put_nowait, (choice, kind, value))

    tickets = service.submit(job, listener)
    if job.stream:
        return StreamingResponse(_events(service, job, tickets, events),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    outs: list[Completion | None] = [None] * len(tickets)
    try:
        while any(o is None for o in outs):
            try:
                choice, kind, value = await asyncio.wait_for(events.get(), 0.5)
            except asyncio.TimeoutError:
                if await request.is_disconnected():  # nobody will read the answer
                    raise Cancelled("client disconnected") from None
                continue
            if kind == "error":
                raise value
            outs[choice] = value
    except Cancelled:
        for ticket in tickets:
            ticket.cancel()
        return JSONResponse(APIError(499, "client closed the request").body(), 499)
    except LocollmError as exc:  # the engine refused it (e.g. a grammar llama.cpp rejects)
        for ticket in tickets:
            ticket.cancel()
        raise APIError(400, exc.render()) from exc
    except BaseException:
        for ticket in tickets:
            ticket.cancel()
        raise
    return service.response(job, outs)  # type: ignore[arg-type]


def _sse(data: Any) -> bytes:
    return b"data: " + json.dumps(data).encode("utf-8") + b"\n\n"


async def _events(service: Service, job: Job, tickets: list[Ticket],
                  events: asyncio.Queue) -> AsyncIterator[bytes]:
    """The server-sent events of a streamed job; closing it (client gone) cancels it."""
    outs: dict[int, Completion] = {}
    started: set[int] = set()
    extra = {"usage": None} if job.include_usage else {}

    def chunk(choice: int, payload: dict, finish: str | None = None) -> bytes:
        body = service.envelope(job, chunk=True)
        body["choices"] = [{"index": choice, "logprobs": None, "finish_reason": finish,
                            **payload}]
        return _sse({**body, **extra})

    try:
        if job.chat:
            for i in range(len(tickets)):
                yield chunk(i, {"delta": {"role": "assistant", "content": ""}})
        while len(outs) < len(tickets):
            choice, kind, value = await events.get()
            if kind == "text":
                if job.chat and choice not in started:
                    value = value.lstrip()  # as parse_response strips the whole answer
                    if not value:
                        continue
                started.add(choice)
                yield chunk(choice, {"delta": {"content": value}} if job.chat
                            else {"text": value})
            elif kind == "done":
                outs[choice] = value
                yield chunk(choice, {"delta": {}} if job.chat else {"text": ""},
                            value.finish_reason)
            else:
                message = value.render() if isinstance(value, LocollmError) else (
                    f"internal error ({type(value).__name__})")
                yield _sse(APIError(500, message, kind="server_error").body())
                return
        done = [outs[i] for i in range(len(tickets))]
        if job.include_usage:
            tail = service.envelope(job, chunk=True)
            yield _sse({**tail, "choices": [], "usage": usage(done),
                        "locollm": service.trace(job, done)})
        yield b"data: [DONE]\n\n"
    finally:
        for ticket in tickets:
            ticket.cancel()  # a no-op for the finished ones


class LocoServer:
    """uvicorn serving :func:`create_app` on a socket bound up front (so a bad port or one in
    use is a clear error, and port 0 is known before serving)."""

    def __init__(self, service: Service, sock: socket.socket) -> None:
        import uvicorn

        self.service = service
        self.socket = sock
        config = service.config
        self._uvicorn = uvicorn.Server(uvicorn.Config(
            create_app(service), log_level="info" if config.verbose else "warning",
            access_log=config.verbose, limit_concurrency=config.max_connections,
            timeout_keep_alive=config.keep_alive_s, timeout_graceful_shutdown=30,
            lifespan="on", server_header=False))
        self._thread: threading.Thread | None = None

    @property
    def server_address(self) -> tuple[str, int]:
        """(host, port) actually bound."""
        return self.socket.getsockname()[:2]

    @property
    def url(self) -> str:
        """Base URL of the OpenAI API, e.g. ``http://127.0.0.1:8000/v1``."""
        host, port = self.server_address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/v1"

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C / SIGTERM finish the requests in flight first)."""
        self._uvicorn.run(sockets=[self.socket])

    def start(self) -> LocoServer:
        """Serve in a background thread; returns once it accepts connections."""
        self._thread = threading.Thread(target=self.serve_forever, name="locollm-serve",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._uvicorn.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise LocollmError("the server did not start within 30 s")
            time.sleep(0.01)
        return self

    def shutdown(self) -> None:
        """Stop a server started with :meth:`start` (waits for requests in flight)."""
        self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(60)

    def server_close(self, close_runtime: bool = True) -> None:
        """Close the socket and (``close_runtime``) free the runtime, after the generations
        in flight."""
        with contextlib.suppress(OSError):
            self.socket.close()
        if close_runtime:
            self.service.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port), or a :class:`LocollmError` saying why not."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=128)
    except OverflowError as exc:
        raise LocollmError(f"port {port} is out of range", fix="use 0 to 65535") from exc
    except OSError as exc:
        raise LocollmError(f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                           fix="pick another --port, or stop what holds it") from exc
    sock.set_inheritable(True)
    return sock


def make_server(runtime: Runtime, host: str = "127.0.0.1", port: int = 8000,
                verbose: bool = False, config: ServeConfig | None = None) -> LocoServer:
    """Bind the server (port 0: any free port); ``serve_forever()`` or ``start()`` runs it.

    ``server_close()`` closes ``runtime`` too.
    """
    config = config or ServeConfig(host=host, port=port, verbose=verbose)
    service = Service(runtime, config)
    return LocoServer(service, bind(config.host, config.port))
