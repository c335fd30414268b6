"""``locollm serve``: the OpenAI-compatible HTTP server over the base and its adapters."""

from __future__ import annotations

import click

from ..errors import LocollmError
from .common import handle_errors


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; anything but loopback needs --api-key.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port (0: any free).")
@click.option("--adapters", "adapter_list", help="Comma-separated adapters (domains or "
              "folders) to load; \"\" for the base only. Default: every trained adapter.")
@click.option("--all", "all_adapters", is_flag=True,
              help="Load every trained adapter under adapters/ (the default).")
@click.option("--base-model", help="Base model (default: the adapters', else gemma-3-270m).")
@click.option("--api-key", envvar="LOCOLLM_API_KEY", show_envvar=True,
              help="Require 'Authorization: Bearer KEY' on every request.")
@click.option("--cors", multiple=True, metavar="ORIGIN",
              help="Allow browser pages from ORIGIN (repeatable; '*' for any). Default: off.")
@click.option("--parallel", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Requests decoded together (KV sequences, split between the lanes).")
@click.option("--lanes", type=click.IntRange(1, 64), help="llama.cpp contexts decoding at the "
              "same time, --threads each (default: LOCOLLM_LANES, else 2 when the physical "
              "cores hold two, 1 with a GPU).")
@click.option("--ctx", "n_ctx", type=click.IntRange(64, 131072), default=2048,
              show_default=True, help="Context tokens of each request (prompt + answer).")
@click.option("--threads", type=click.IntRange(1, 256),
              help="CPU threads (default: LOCOLLM_THREADS, else the performance cores).")
@click.option("--threads-batch", type=click.IntRange(1, 256),
              help="Threads for prompts and batched steps (default: --threads).")
@click.option("--gpu-layers", type=int, help="Layers on the GPU (default: all when llama.cpp "
              "has a GPU backend, else 0; -1: all).")
@click.option("--router", type=click.Choice(["keywords", "classifier"]),
              help="Router behind model \"auto\" (default: the better measured, classifier).")
@click.option("--prefix-cache", is_flag=True, help="Reuse a finished request's KV cache for "
              "a prompt with the same adapters and prefix (faster; answers may then differ "
              "in the last digits from a fresh run).")
@click.option("--max-tokens", type=click.IntRange(1), default=4096, show_default=True,
              help="Most tokens one request may ask for.")
@click.option("--max-queue", type=click.IntRange(0), default=64, show_default=True,
              help="Requests allowed to wait for a free sequence (then 429).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(1), default=300,
              show_default=True, help="Seconds one request may generate for.")
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
@handle_errors
def serve(host, port, adapter_list, all_adapters, base_model, api_key, cors, parallel, lanes,
          n_ctx, threads, threads_batch, gpu_layers, router, prefix_cache, max_tokens,
          max_queue, timeout_s, verbose) -> None:
    """Serve the base and adapters over an OpenAI-compatible HTTP API.

    The base loads once; each request's "model" picks an adapter by name, several joined
    with "+" (math+units), the base by its name, or "auto" for the router. Requests are
    decoded together, adapter set by adapter set. Endpoints: /v1/models, /v1/completions,
    /v1/chat/completions (whole conversations, stream supported), /lora-adapters, /health,
    /docs (the OpenAPI schema).

    \b
    Examples:
      locollm serve
      locollm serve --port 8080 --adapters math,adapters/code
      locollm serve --host 0.0.0.0 --api-key "$(openssl rand -hex 16)"
      curl -s localhost:8000/v1/chat/completions -H 'Content-Type: application/json' \\
          -d '{"model": "auto", "messages": [{"role": "user", "content": "What is 47 + 35?"}]}'
    """
    import contextlib
    import signal

    from ..runtime.engine import EngineConfig
    from ..runtime.server import ServeConfig, make_server
    from ..runtime.session import open_runtime

    if adapter_list is not None and all_adapters:
        raise LocollmError("--adapters and --all exclude each other")
    config = ServeConfig(host=host, port=port, api_key=api_key or None, cors=tuple(cors),
                         max_tokens=max_tokens, max_queue=max_queue,
                         request_timeout_s=timeout_s, verbose=verbose)
    names = (None if adapter_list is None
             else [a.strip() for a in adapter_list.split(",") if a.strip()])
    engine = EngineConfig(n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads_batch,
                          n_seq_max=parallel, lanes=lanes,
                          n_gpu_layers=gpu_layers, reuse_prefix=prefix_cache)
    runtime = open_runtime(names, base_model=base_model, config=engine, router=router)
    try:
        server = make_server(runtime, config=config)
        ids = [runtime.base_name, *runtime.metas, "auto"]
        eng = runtime.engine
        click.echo(f"serving {', '.join(ids)} at {server.url} ({parallel} in parallel in "
                   f"{len(eng.lanes)} lane(s) of {eng.threads} thread(s), "
                   f"{eng.n_gpu_layers} GPU layers; Ctrl-C stops)", err=True)
        # uvicorn finishes the requests in flight on SIGINT/SIGTERM, then re-raises the
        # signal with the handler it found: make SIGTERM a KeyboardInterrupt too, so `kill`
        # ends here (runtime closed) rather than killing the process
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
        click.echo("stopped", err=True)
        server.server_close()
    finally:
        runtime.close()
