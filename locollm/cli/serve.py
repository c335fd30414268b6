"""``locollm serve``: the OpenAI-compatible HTTP server over the base and its adapters."""

from __future__ import annotations

import click

from ..errors import LocollmError
from .common import handle_errors


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on (keep the loopback unless you mean to share it).")
@click.option("--port", type=int, default=8000, show_default=True, help="Port (0: any free).")
@click.option("--adapters", "adapter_list", help="Comma-separated adapters (domains or "
              "folders) to load; \"\" for the base only. Default: every trained adapter.")
@click.option("--all", "all_adapters", is_flag=True,
              help="Load every trained adapter under adapters/ (the default).")
@click.option("--base-model", help="Base model (default: the adapters', else gemma-3-270m).")
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
@handle_errors
def serve(host, port, adapter_list, all_adapters, base_model, verbose) -> None:
    """Serve the base and adapters over an OpenAI-compatible HTTP API.

    The base loads once; each request's "model" picks an adapter by name, the base by its
    name, or "auto" for the keyword router. Endpoints: /v1/models, /v1/completions,
    /v1/chat/completions (stream supported), /lora-adapters, /health.

    \b
    Examples:
      locollm serve
      locollm serve --port 8080 --adapters math,adapters/code
      curl -s localhost:8000/v1/chat/completions -H 'Content-Type: application/json' \\
          -d '{"model": "auto", "messages": [{"role": "user", "content": "What is 47 + 35?"}]}'
    """
    from ..runtime.server import make_server
    from ..runtime.session import open_runtime

    if adapter_list is not None and all_adapters:
        raise LocollmError("--adapters and --all exclude each other")
    names = (None if adapter_list is None
             else [a.strip() for a in adapter_list.split(",") if a.strip()])
    runtime = open_runtime(names, base_model=base_model)
    try:
        server = make_server(runtime, host, port, verbose)
        ids = [runtime.base_name, *runtime.metas, "auto"]
        click.echo(f"serving {', '.join(ids)} at {server.url} (Ctrl-C stops)", err=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            click.secho(f"warning: listening on {host}: anyone who reaches it can use it",
                        fg="yellow", err=True)
        import signal

        signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops it cleanly too
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            click.echo("stopped", err=True)
        finally:
            server.server_close()
    finally:
        runtime.close()
