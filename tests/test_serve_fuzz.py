"""A bounded schemathesis run over the server's OpenAPI schema: no request gets a 5xx."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from helpers_adapters import adapters_runtime, serving

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


@pytest.mark.slow
def test_fuzzing_the_schema_finds_no_server_error(tmp_path, shared_models):
    from serve_fuzz import KEY, fuzz

    from locollm.runtime.engine import EngineConfig

    with adapters_runtime(tmp_path, shared_models, config=EngineConfig(n_ctx=512)) as runtime, \
            serving(runtime, True, api_key=KEY, max_tokens=8) as server:
        result = fuzz(server.url, max_examples=8)
    assert result.returncode == 0, result.stdout[-3000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert generated and int(generated.group(1)) == int(generated.group(2)) > 50
