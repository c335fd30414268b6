"""locollm: from "the base model fails at my task" to a measured LoRA adapter on a laptop."""

__version__ = "0.1.0"
