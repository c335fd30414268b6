"""The ``locollm`` / ``loco`` command line: a thin shell over the library.

One module per verb group (``models``, ``data``, ``train``, ``export``, ``merge``, ``eval``,
``score``, ``adapters``, ``query``/``route``/``chat``, ``serve``, ``doctor``); this one
assembles the click group. Each command parses its flags, calls one library function and
prints the result. Library errors (:class:`~locollm.errors.LocollmError`) become a message and
exit status 1 (a check found problems) or 2 (bad input or usage); no traceback reaches the
user for a bad input. Modules here import only click at the top, so ``locollm --help`` stays
instant.
"""

from __future__ import annotations

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="locollm")
def cli() -> None:
    """locollm: train, measure and ship small LoRA adapters that run on a laptop.

    \b
    The guide's workflow:
      loco query "What is 47 + 35?" --no-adapter --save-log baseline_tests.jsonl
      locollm data check adapters/math/training/dataset.jsonl
      locollm train --domain math
      locollm eval --adapter math
      locollm export math --gguf --verify
      loco query "Tom has 47 apples and gets 35 more..." --adapter math
    """


def _register() -> None:
    from . import adapters, data, doctor, eval, export, merge, models, query, score, serve, train

    for group in (models.models, data.data, adapters.adapters):
        cli.add_command(group)
    for command in (train.train, export.export, merge.merge, query.query, eval.eval_cmd,
                    score.score, query.route, query.chat, serve.serve, doctor.doctor):
        cli.add_command(command)


_register()
