"""The Colab notebook calls the CLI; every locollm command and flag in it must exist."""

from __future__ import annotations

import json
import shlex

import click
from conftest import REPO

from locollm.cli import cli


def _locollm_lines():
    notebook = json.loads((REPO / "colab" / "train_t4.ipynb").read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        for line in "".join(cell["source"]).splitlines():
            if line.startswith(("!locollm ", "!loco ")):
                yield shlex.split(line[1:])[1:]


def _resolve(args):
    command, rest = cli, list(args)
    while isinstance(command, click.Group) and rest and rest[0] in command.commands:
        command = command.commands[rest.pop(0)]
    return command, rest


def test_notebook_uses_only_existing_commands_and_flags():
    lines = list(_locollm_lines())
    assert {line[0] for line in lines} >= {"train", "export", "eval", "data"}
    for args in lines:
        command, rest = _resolve(args)
        assert not isinstance(command, click.Group), args
        known = {opt for p in command.params for opt in p.opts + p.secondary_opts}
        flags = [a for a in rest if a.startswith("--")]
        assert set(flags) <= known, (args, set(flags) - known)
