"""What every command module shares: library errors turned into a message and an exit status."""

from __future__ import annotations

import functools
import sys

import click

from ..errors import LocollmError


def handle_errors(fn):
    """Turn library errors into a message on stderr and the error's exit status."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LocollmError as exc:
            click.secho(f"error: {exc.render()}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper
