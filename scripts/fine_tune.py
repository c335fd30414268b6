"""The guide's training script: a thin wrapper over `locollm train` (same flags, same code).

    uv run python scripts/fine_tune.py --base-model gemma-3-270m \\
        --dataset adapters/your-domain/training/dataset.jsonl --output adapters/your-domain/ \\
        --lora-rank 16 --epochs 3 --lr 2e-4
"""

import sys

from locollm.cli import cli

if __name__ == "__main__":
    cli(["train", *sys.argv[1:]], prog_name="fine_tune.py")
