"""Where a training run's settings come from, lowest first: the ``TrainConfig`` defaults, a
hardware profile, ``configs/domains/DOMAIN.yaml``, a ``--config`` file, the explicit flags.
"""

from __future__ import annotations

from pathlib import Path


def build_train_config(domain: str | None, config_file: Path | None, profile: str | None = None,
                       **flags):
    """defaults < profile < domain config < --config < explicit flags.

    Returns the config and, when a profile was given, what was picked and why.
    """
    from ..config import TrainConfig, merge_config, read_yaml

    layers, sources, choice = [], [], None
    if profile:
        from .profiles import resolve_profile

        keys, choice, path = resolve_profile(profile)
        layers.append(keys)
        sources.append(str(path))
    if domain:
        root = Path("adapters") / domain
        layers.append({"dataset": str(root / "training" / "dataset.jsonl"),
                       "output": str(root)})
        sources.append(f"--domain {domain}")
        domain_cfg = Path("configs") / "domains" / f"{domain}.yaml"
        if domain_cfg.exists():
            layers.append(read_yaml(domain_cfg))
            sources.append(str(domain_cfg))
    if config_file:
        layers.append(read_yaml(config_file))
        sources.append(str(config_file))
    layers.append(flags)
    sources.append("command-line flags")
    return merge_config(TrainConfig, *layers, sources=sources), choice
