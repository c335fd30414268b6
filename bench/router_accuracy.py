"""Both routers on each shipped adapter's benchmark and out-of-domain set: the default's basis.

Accuracy on a benchmark is the share of its questions routed to its adapter; on an
out-of-domain set, the share routed to the base. The keyword router reads
adapters/registry.yaml; the classifier router is trained on the adapter folders five times,
each time without one fold of the benchmark and out-of-domain questions, and scored on that
fold (``locollm.runtime.classifier.compare_routers``).

Usage: python bench/router_accuracy.py [--adapters-root adapters]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters-root", type=Path, default=REPO / "adapters")
    args = parser.parse_args()

    from locollm.adapter.meta import trained_adapters
    from locollm.adapter.registry import load_registry, registry_path
    from locollm.runtime.classifier import compare_routers
    from locollm.runtime.router import DEFAULT_ROUTER

    folders = trained_adapters(args.adapters_root)
    scores = compare_routers(folders, load_registry(registry_path(args.adapters_root)))
    print("| adapter | router | benchmark -> adapter | out-of-domain -> base |")
    print("|---|---|---|---|")
    for s in scores:
        bench = "-" if s.benchmark is None else f"{s.benchmark:.1%} of {s.n_benchmark}"
        ood = "-" if s.ood is None else f"{s.ood:.1%} of {s.n_ood}"
        print(f"| {s.adapter} | {s.router} | {bench} | {ood} |")
    for router in ("keywords", "classifier"):
        mine = [s for s in scores if s.router == router]
        hits = sum((s.benchmark or 0) * s.n_benchmark + (s.ood or 0) * s.n_ood for s in mine)
        total = sum(s.n_benchmark + s.n_ood for s in mine)
        print(f"{router}: {hits / max(total, 1):.1%} of {total} questions routed right")
    print(f"default router: {DEFAULT_ROUTER}")


if __name__ == "__main__":
    main()
