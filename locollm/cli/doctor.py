"""``locollm doctor``: does llama.cpp run here, and what a bug report needs."""

from __future__ import annotations

import json
import sys

import click

from .common import handle_errors


@click.command()
@click.option("--model", help="GGUF or embedded name to test-decode (default gemma-3-270m).")
@click.option("--quick", is_flag=True, help="Only the decode check, one line (make setup/demo).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def doctor(model: str | None, quick: bool, as_json: bool) -> None:
    """Check that llama.cpp runs here, and print what a bug report needs.

    One tiny real decode of the embedded model runs in a child process, so a native crash
    (an AMX or AVX-512 path this CPU faults on) is reported with its cause and the command
    that rebuilds llama-cpp-python safely, instead of killing your run. Also reports torch,
    CUDA/MPS, llama.cpp's build flags, threads and the model cache. Exit status 1 when the
    decode check fails.

    \b
    Examples:
      locollm doctor
      locollm doctor --quick
      locollm doctor --json > doctor.json
    """
    from ..doctor import build_report, diagnose, run_probe

    if quick:
        probe = run_probe(model)
        if not probe.ok:
            click.secho(f"doctor: {diagnose(probe)}", fg="red", err=True)
            sys.exit(1)
        click.echo(f"doctor: llama.cpp decodes on this machine ({probe.model}: "
                   f"{probe.text!r}, {probe.seconds:.1f}s)")
        return
    report = build_report(model)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for name, rows in report.sections:
            click.secho(name, bold=True)
            for key, value in rows:
                click.echo(f"  {key:<18} {value}")
        probe = report.probe
        if probe is not None and probe.ok:
            rate = f", {probe.tokens_per_second:.0f} tokens/s" if probe.tokens_per_second else ""
            click.secho(f"decode check: ok ({probe.text!r} in {probe.seconds:.1f}s{rate})",
                        fg="green")
    if not report.ok:
        click.secho(f"decode check: FAILED\n{diagnose(report.probe)}", fg="red", err=True)
        sys.exit(1)
