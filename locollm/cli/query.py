"""``loco query``, ``loco route`` and ``loco chat``: the base and adapters from a terminal."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import LocollmError
from .common import handle_errors


@click.command()
@click.argument("text")
@click.option("--adapter", help="Adapter folder or domain under adapters/.")
@click.option("--no-adapter", is_flag=True, help="Use the bare base model (baseline testing).")
@click.option("--auto", is_flag=True, help="Pick the adapter with the keyword router "
              "(router_keywords in adapters/registry.yaml); no match uses the base.")
@click.option("--base-model", help="Base model (default: the adapter's, else gemma-3-270m).")
@click.option("--instruction", help="Use TEXT as the input of this instruction.")
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=0.0, show_default=True)
@click.option("--votes", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Self-consistency: sample N answers (decoded together) and return the "
              "majority's final answer (temperature 0.7 unless given).")
@click.option("--reread/--no-reread", default=None,
              help="RE2: give the question twice ('Read the question again: ...'). Default "
              "off: it did not help the math adapter (README, Inference-time helpers).")
@click.option("--router", type=click.Choice(["keywords", "classifier"]),
              help="Router for --auto (default: classifier).")
@click.option("--save-log", type=click.Path(path_type=Path),
              help="Append the query, answer and settings to this JSONL log.")
@handle_errors
def query(text, adapter, no_adapter, auto, base_model, instruction, max_tokens, temperature,
          votes, reread, router, save_log) -> None:
    """Ask the base model or an adapter one question.

    \b
    Examples:
      loco query "What is 47 + 35?" --no-adapter --save-log baseline_tests.jsonl
      loco query "Tom has 47 apples and gets 35 more. How many now?" --adapter math
      loco query "How many apples does Tom have if he adds 35 to 47?" --auto
      loco query "A shop sells 12 pens a day. How many in a week?" --adapter math --votes 5
    """
    from ..errors import LocollmError
    from ..runtime.query import append_log
    from ..runtime.query import query as run_query

    if adapter and no_adapter:
        raise LocollmError("--adapter and --no-adapter exclude each other")
    if auto:
        from ..runtime.router import route_text

        if adapter or no_adapter:
            raise LocollmError("--auto picks the adapter itself", fix="drop --adapter/--no-adapter")
        routed = route_text(text, router=router)
        adapter = routed.adapter
        click.echo(f"[route: {adapter or 'base'}, {routed.reason()}]", err=True)
    result = run_query(text, adapter=None if no_adapter else adapter, base_model=base_model,
                       instruction=instruction, max_tokens=max_tokens, temperature=temperature,
                       votes=votes, **({} if reread is None else {"reread_question": reread}))
    click.echo(result.answer)
    c = result.completion
    vote = (f", {result.settings['majority']}/{votes} votes" if votes > 1 else "")
    click.echo(f"[{result.adapter or 'base'}: {c.completion_tokens} tokens in "
               f"{c.latency_s:.2f}s{vote}]", err=True)
    if save_log:
        append_log(save_log, result)


@click.command()
@click.argument("text")
@click.option("--registry", type=click.Path(path_type=Path),
              help="Registry file (default adapters/registry.yaml).")
@click.option("--untrained", is_flag=True, help="Also consider entries whose folder has no "
              "trained adapter yet (keyword router only).")
@click.option("--router", type=click.Choice(["keywords", "classifier"]),
              help="keywords (registry router_keywords) or classifier (TF-IDF + logistic "
              "regression on the adapters' data). Default: classifier, keywords with "
              "--untrained.")
@handle_errors
def route(text: str, registry: Path | None, untrained: bool, router: str | None) -> None:
    """Print the adapter the router picks for TEXT ("base" if none), and why.

    \b
    Examples:
      loco route "Tom has 47 apples and gets 35 more. How many now?"
      loco route "Tom has 47 apples..." --router keywords
      loco route "Summarise this contract" --untrained
    """
    from ..runtime.router import route_text

    if untrained and router == "classifier":
        raise LocollmError("--untrained needs the keyword router",
                           fix="the classifier learns from trained adapter folders only")
    routed = route_text(text, registry=registry, trained_only=not untrained,
                        router="keywords" if untrained else router)
    click.echo(routed.adapter or "base")
    click.echo(f"  {routed.reason()}", err=True)


@click.command()
@click.option("--adapter", help="Adapter (folder or domain) to start with.")
@click.option("--auto", is_flag=True, help="Route every turn with the keyword router.")
@click.option("--base-model", help="Base model (default: the adapters', else gemma-3-270m).")
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=0.0, show_default=True)
@handle_errors
def chat(adapter, auto, base_model, max_tokens, temperature) -> None:
    """Chat with the base model and the trained adapters, switching between turns.

    Each line is a turn; the conversation so far is part of the prompt (/reset clears it).
    Commands: /adapter NAME, /base, /auto, /adapters, /reset, /help, /quit.

    \b
    Examples:
      loco chat --adapter math
      loco chat --auto
      printf "What is 2 + 3?\\n/adapter math\\nWhat is 2 + 3?\\n" | loco chat
    """
    from ..runtime.chat import open_chat

    session = open_chat(adapter, auto=auto, base_model=base_model, max_tokens=max_tokens,
                        temperature=temperature)
    try:
        _chat_loop(session)
    finally:
        session.runtime.close()


def _chat_loop(session) -> None:
    """Read lines until /quit or end of input; a bad command is reported, not fatal."""
    stdin = sys.stdin
    tty = stdin.isatty()
    if tty:
        click.echo(f"chat on {session.runtime.base_name}, adapters: "
                   f"{', '.join(session.runtime.metas) or 'none'} (/help for commands)", err=True)
    while True:
        line = input(f"{session.mode}> ") if tty else stdin.readline()
        if not tty and not line:
            return
        try:
            reply = session.handle(line, on_text=(lambda t: click.echo(t, nl=False)) if tty
                                   else None)
        except LocollmError as exc:
            click.secho(f"error: {exc.render()}", fg="red", err=True)
            continue
        if reply is None:
            continue
        if not (tty and reply.completion):
            click.echo(reply.text)
        elif not reply.completion.text.endswith("\n"):  # streamed: end the line
            click.echo()
        if reply.completion:
            c, why = reply.completion, f", {reply.route.reason()}" if reply.route else ""
            click.echo(f"[{c.adapter or 'base'}: {c.completion_tokens} tokens in "
                       f"{c.latency_s:.2f}s{why}]", err=True)
        if reply.quit:
            return
