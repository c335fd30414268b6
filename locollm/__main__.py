"""``python -m locollm``: the CLI, also as launchers run modules (``torchrun -m locollm train``)."""

from locollm.cli import cli

if __name__ == "__main__":
    cli(prog_name="locollm")
