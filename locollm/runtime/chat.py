"""``loco chat``: an interactive session on one loaded base, switching adapters between turns.

Each line typed is a user turn; the whole conversation so far goes into the prompt
(:func:`~locollm.runtime.conversation.conversation_prompt`: the base's chat template, else the
adapter's prompt format turn by turn), so a follow-up question sees the earlier answers.
``/reset`` starts a new conversation. A line that starts with ``/`` is a command (see
:data:`COMMANDS`). The CLI owns the terminal: it reads lines, passes them to
:meth:`ChatSession.handle` and prints the reply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..adapter.meta import ADAPTERS_ROOT, load_meta, resolve_adapter, trained_adapters
from ..errors import AdapterError, LocollmError
from ..prompt import parse_response
from .conversation import Message, conversation_prompt
from .engine import Completion
from .router import Route
from .session import Runtime, open_runtime

COMMANDS = {
    "/adapter NAME": "answer with adapter NAME from now on",
    "/base": "answer with the bare base model",
    "/auto": "route each turn by the registry's router keywords",
    "/adapters": "list the loaded adapters",
    "/reset": "forget the conversation so far",
    "/help": "show these commands",
    "/quit": "leave (also /exit, or end of input)",
}


@dataclass
class ChatReply:
    """What the CLI shows after one line."""

    text: str
    completion: Completion | None = None  # set for an answer
    route: Route | None = None  # set when the turn was routed
    quit: bool = False


class ChatSession:
    """A chat over a :class:`Runtime`: the adapter in use, or routing, between turns."""

    def __init__(self, runtime: Runtime, *, adapter: str | None = None, auto: bool = False,
                 max_tokens: int = 256, temperature: float = 0.0) -> None:
        self.runtime = runtime
        self.auto = auto
        self.adapter: str | None = None
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.history: list[Message] = []  # the conversation so far (user and assistant)
        if adapter:
            self.switch(adapter)

    @property
    def mode(self) -> str:
        """``auto``, the adapter's name, or ``base``: for the prompt and status lines."""
        return "auto" if self.auto else self.adapter or "base"

    def switch(self, name: str | None) -> None:
        """Answer with adapter ``name`` (None: the base) from the next turn on."""
        if name is not None and name not in self.runtime.metas:
            loaded = ", ".join(self.runtime.metas) or "none"
            raise AdapterError(f"adapter {name!r} is not loaded", fix=f"loaded: {loaded}")
        self.adapter, self.auto = name, False

    def command(self, line: str) -> ChatReply:
        """Run a ``/command``."""
        word, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        if word in ("/quit", "/exit"):
            return ChatReply("bye", quit=True)
        if word == "/adapter" and arg:
            self.switch(arg)
        elif word == "/base":
            self.switch(None)
        elif word == "/auto":
            self.auto = True
        elif word == "/adapters":
            return ChatReply("loaded: " + (", ".join(self.runtime.metas) or "none"))
        elif word == "/reset":
            self.history.clear()
            return ChatReply("conversation cleared")
        elif word == "/help":
            return ChatReply("\n".join(f"  {c:<14} {h}" for c, h in COMMANDS.items()))
        else:
            raise LocollmError(f"unknown command {line.strip()!r}", fix="type /help")
        return ChatReply(f"now answering with {self.mode}")

    def ask(self, text: str, on_text: Callable[[str], object] | None = None) -> ChatReply:
        """Answer one turn with the conversation so far (streaming pieces to ``on_text``)."""
        route = self.runtime.router.route(text) if self.auto else None
        adapter = route.adapter if route else self.adapter
        fmt = self.runtime.prompt_format(adapter)
        messages = [*self.history, Message("user", text)]
        engine = self.runtime.engine
        prompt = conversation_prompt(messages, fmt, self.runtime.instructions.get(adapter or ""),
                                     engine.chat_template, engine.bos_text, engine.eos_text)
        out = engine.complete(prompt, adapter=adapter, max_tokens=self.max_tokens,
                              temperature=self.temperature, stop=fmt.stop, on_text=on_text)
        answer = parse_response(out.text, fmt)
        self.history += [Message("user", text), Message("assistant", answer)]
        return ChatReply(answer, out, route)

    def handle(self, line: str, on_text: Callable[[str], object] | None = None
               ) -> ChatReply | None:
        """One line of input: a command, a turn, or nothing (blank line)."""
        if not line.strip():
            return None
        if line.lstrip().startswith("/"):
            return self.command(line)
        return self.ask(line.strip(), on_text)


def open_chat(adapter: str | None = None, *, auto: bool = False, base_model: str | None = None,
              adapters_root: str | Path = ADAPTERS_ROOT,
              instruction_for: Callable[[Path], str | None] | None = None,
              max_tokens: int = 256, temperature: float = 0.0) -> ChatSession:
    """A chat with every trained adapter under ``adapters_root`` loaded (a LoRA GGUF loads in
    milliseconds), plus ``adapter`` (a name or folder) which answers first."""
    if adapter and auto:
        raise LocollmError("--adapter and --auto exclude each other")
    folders: list[str | Path] = list(trained_adapters(adapters_root).values())
    name = None
    if adapter:
        folder = resolve_adapter(adapter, adapters_root)
        folders.append(folder)
        name = load_meta(folder).name
    runtime = open_runtime(folders, base_model=base_model, adapters_root=adapters_root,
                           instruction_for=instruction_for)
    return ChatSession(runtime, adapter=name, auto=auto, max_tokens=max_tokens,
                       temperature=temperature)
