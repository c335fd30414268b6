"""A bounded fuzz run of ``locollm serve``'s OpenAPI schema with schemathesis, on loopback.

The real server (embedded base, two LoRA GGUFs, an API key) is started on 127.0.0.1 with small
ceilings (``max_tokens`` 8, context 512) so each generated request is quick; schemathesis reads
``/openapi.json`` and sends schema-shaped and malformed requests to every operation. The check
is ``not_a_server_error``: every answer must be a 2xx or a 4xx, never a 5xx.

Usage: python bench/serve_fuzz.py [--max-examples 30]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers_adapters import adapters_runtime, serving  # noqa: E402

KEY = "fuzz-key"


def fuzz(server_url: str, max_examples: int, seed: int = 1) -> subprocess.CompletedProcess:
    """Run the schemathesis CLI against a server; its exit status is 0 when no check failed."""
    schemathesis = Path(sys.executable).with_name("schemathesis")
    root = server_url.removesuffix("/v1")
    return subprocess.run(
        [str(schemathesis), "run", f"{root}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", str(max_examples), "--workers", "1", "--seed", str(seed),
         "--request-timeout", "120", "--header", f"Authorization: Bearer {KEY}",
         "--no-color"], capture_output=True, text=True, timeout=3000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=30)
    args = parser.parse_args()
    from locollm.paths import models_dir
    from locollm.runtime.engine import EngineConfig

    models = models_dir()
    with tempfile.TemporaryDirectory() as tmp, \
            adapters_runtime(Path(tmp), models, config=EngineConfig(n_ctx=512)) as runtime, \
            serving(runtime, True, api_key=KEY, max_tokens=8) as server:
        result = fuzz(server.url, args.max_examples)
    print(result.stdout[-4000:])
    print(f"schemathesis exit status {result.returncode} (0: no 5xx and no other failure)")


if __name__ == "__main__":
    main()
