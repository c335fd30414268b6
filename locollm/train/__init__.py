"""Training: ``train(cfg)`` picks a backend (unsloth on CUDA, peft elsewhere); same outputs."""

from ..config import TrainConfig

__all__ = ["TrainConfig", "train"]


def train(cfg: TrainConfig, **kwargs):
    """Train a LoRA adapter; see :func:`locollm.train.api.train`."""
    from .api import train as _train

    return _train(cfg, **kwargs)
