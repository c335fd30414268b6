"""The guide's evaluation script: a thin wrapper over `locollm eval` (same flags, same code).

    # adapter vs the benchmark
    uv run python scripts/evaluate.py --adapter adapters/your-domain/ \\
        --benchmark adapters/your-domain/eval/benchmark.jsonl \\
        --output adapters/your-domain/eval/results.json
    # base model vs the same benchmark
    uv run python scripts/evaluate.py --benchmark adapters/your-domain/eval/benchmark.jsonl \\
        --output adapters/your-domain/eval/base_results.json
"""

import sys

from locollm.cli import cli

if __name__ == "__main__":
    cli(["eval", *sys.argv[1:]], prog_name="evaluate.py")
