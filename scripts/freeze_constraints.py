"""Rewrite constraints.txt from the packages this venv holds (run by `make constraints`).

Pins every installed distribution except locollm and what a user's machine may hold in its
own build: torch, its CUDA wheels and the packages only torch uses (TORCH_SPEC pins torch), and
llama-cpp-python (locollm/llama_build.py pins it). Lines after the ``# build-only`` marker
(tools that live only in pip's isolated build environments, such as scikit-build-core) are kept
as they are.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

SKIP = re.compile(r"^(torch|triton|nvidia-.*|sympy|mpmath|networkx|llama-cpp-python|locollm)$")
MARKER = "# build-only"
HEADER = """\
# Exact versions `make setup` installs (PIP_CONSTRAINT), the set `make test` last passed with.
# Written by `make constraints` (scripts/freeze_constraints.py); edit only the build-only part.
# Not pinned here: torch (TORCH_SPEC in the Makefile) and llama-cpp-python
# (locollm/llama_build.py), so that a CUDA or Metal build a user already has is kept.
"""


def main(path: str) -> int:
    target = Path(path)
    old = target.read_text().splitlines() if target.exists() else []
    build_only = old[old.index(MARKER):] if MARKER in old else [MARKER]
    pins = {}
    for dist in metadata.distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
        if not SKIP.match(name):
            pins[name] = dist.version
    body = [f"{name}=={version}" for name, version in sorted(pins.items())]
    target.write_text(HEADER + "\n".join(body + [""] + build_only) + "\n")
    print(f"wrote {len(body)} pins to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "constraints.txt"))
