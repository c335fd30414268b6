"""``locollm adapters validate``: adapter folders against the guide's layout and the registry.

Every way a folder falls short (missing files, unreadable results, no or a stale registry
entry, router keywords shared with another adapter) is collected with its file and a fix.
Every measured field of the entry (base, quantization, rank, scores, improvement, size) is
checked against the files, and the eval results against what they rest on: results computed
on another version of the benchmark (its sha256), on part of it, with another version of the
adapter or on another base are refused, and so is a score that does not match its own items.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import AdapterError, LocollmError, Problem
from .meta import ADAPTERS_ROOT, METADATA, load_meta
from .register import EVAL_FIX, read_score, size_mb
from .registry import Registry, RegistryEntry, improvement, registry_path, validate_registry

# What the guide's layout requires, and how each file comes about.
LAYOUT: tuple[tuple[str, str], ...] = (
    ("adapter_config.json", "train it: locollm train --domain {d}"),
    ("adapter_model.safetensors", "train it: locollm train --domain {d}"),
    ("training/dataset.jsonl", "put the full training set there"),
    ("training/train_config.yaml", "train it: locollm train --domain {d} (writes it)"),
    ("training/TRAINING_LOG.md", "document the data, runs and iterations there"),
    ("eval/benchmark.jsonl", "write 50+ held-out test cases there"),
    ("eval/results.json", "run: locollm eval --adapter {d}"),
    ("eval/base_results.json", "run: locollm eval --adapter {d}"),
    ("eval/ood_results.json", "put an out-of-domain set in eval/ood.jsonl, then run: "
     "locollm eval --adapter {d}"),
)



def _consistency(domain: str, folder: Path, entry: RegistryEntry, path: Path,
                 line: int | None) -> list[Problem]:
    """Does the entry still describe the folder? Every measured field, against the files."""
    fix = f"run: locollm adapters register {domain}"
    try:
        meta = load_meta(folder)
        score = read_score(folder / "eval" / "results.json", domain)
        base_score = read_score(folder / "eval" / "base_results.json", domain)
    except LocollmError:
        return []  # reported by the layout check
    stale = []
    if entry.lora_rank != meta.lora_rank:
        stale.append(f"lora_rank {entry.lora_rank} (folder: {meta.lora_rank})")
    if entry.base_model != meta.base_model:
        stale.append(f"base_model {entry.base_model!r} (folder: {meta.base_model!r})")
    # register writes the scores rounded to 4 places: anything else was edited or is old
    if abs(entry.benchmark_score - round(score, 4)) > 1e-9:
        stale.append(f"benchmark_score {entry.benchmark_score} (eval: {score:.4f})")
    if abs(entry.base_model_score - round(base_score, 4)) > 1e-9:
        stale.append(f"base_model_score {entry.base_model_score} (eval: {base_score:.4f})")
    expected = improvement(score, base_score)
    if entry.improvement != expected:
        stale.append(f"improvement {entry.improvement!r} (eval: {expected!r})")
    size = size_mb(folder)
    if abs(entry.size_mb - size) > 0.05 + 1e-9:
        stale.append(f"size_mb {entry.size_mb} (folder: {size})")
    served = _recorded_quantization(folder)
    if served and entry.quantization != served:
        stale.append(f"quantization {entry.quantization!r} (eval ran on {served})")
    return [Problem(f"{domain}: entry is stale: {s}", path, line, fix) for s in stale]


def _recorded_quantization(folder: Path) -> str | None:
    from ..evaluate.results import load_result

    try:
        result = load_result(folder / "eval" / "results.json")
    except LocollmError:
        return None
    return (result.base or {}).get("quantization") if result.runtime == "llama.cpp" else None


def _provenance(domain: str, folder: Path) -> list[Problem]:
    """Were the eval results computed on this benchmark, all of it, this adapter and base?"""
    from ..evaluate.benchmark import benchmark_sha256, load_benchmark
    from ..evaluate.provenance import same_adapter
    from ..evaluate.results import load_ood, load_result

    fix = EVAL_FIX.format(d=domain)
    problems: list[Problem] = []
    try:
        meta = load_meta(folder)
    except LocollmError:
        return []  # reported by the layout check
    checks = []
    for bench_name, result_names in (("benchmark.jsonl", ("results.json", "base_results.json")),
                                     ("ood.jsonl", ("ood_results.json",))):
        bench = folder / "eval" / bench_name
        if not bench.exists():
            continue
        try:
            count = len(load_benchmark(bench, need_prompt=False))
        except LocollmError as exc:
            problems.append(exc.problem)
            continue
        for name in result_names:
            path = folder / "eval" / name
            try:
                if name == "ood_results.json":
                    ood = load_ood(path)
                    found = [ood.base, ood.adapter]
                else:
                    found = [load_result(path)]
            except LocollmError:
                continue  # missing or unreadable: the layout check says so
            checks += [(path, bench, benchmark_sha256(bench), count, r) for r in found]
    for path, bench, sha, count, result in checks:
        problems += [Problem(f"{domain}: {message}", path, fix=fix)
                     for message in _result_problems(result, bench, sha, count, meta)]
        if result.adapter and same_adapter(result.adapter, folder) is False:
            problems.append(Problem(f"{domain}: computed with another version of the adapter "
                                    "(its weights changed since)", path, fix=fix))
    return problems


def _result_problems(result, bench: Path, sha: str, count: int, meta) -> list[str]:
    """What is wrong with one result against its benchmark and the adapter's base."""
    if not result.benchmark_sha256:
        return [f"{result.model} result does not record the sha256 of the benchmark it was "
                "computed on (written by an older locollm)"]
    if result.benchmark_sha256 != sha:
        return [f"{result.model} result was computed on another benchmark (sha256 "
                f"{result.benchmark_sha256[:12]}; {bench.name} is {sha[:12]})"]
    found = []
    if result.total != count:
        found.append(f"{result.model} result scored {result.total} of the {count} items of "
                     f"{bench.name} (a --limit run)")
    if result.items and (result.correct != sum(i.correct for i in result.items) or
                         abs(result.score - sum(i.value for i in result.items) /
                             len(result.items)) > 1e-9 or result.total != len(result.items)):
        found.append(f"{result.model} result's score {result.score:.4f} "
                     f"({result.correct}/{result.total}) does not match its own items")
    base_sha = (result.base or {}).get("sha256")
    if base_sha and meta.base_sha256 and base_sha != meta.base_sha256:
        found.append(f"{result.model} result was computed on another base (sha256 "
                     f"{base_sha[:12]}, the adapter's is {meta.base_sha256[:12]})")
    return found


def check_folder(domain: str, folder: Path, registry: Registry,
                 registry_problems: list[Problem], registry_readable: bool = True
                 ) -> list[Problem]:
    """Every way ``folder`` falls short of the guide's layout and its registry entry."""
    if not folder.is_dir():
        return [Problem(f"{domain}: listed in the registry but the folder is missing", folder,
                        fix=f"add adapters/{domain}/ or remove the entry")]
    problems = [Problem("missing", folder / rel, fix=fix.format(d=domain))
                for rel, fix in LAYOUT if not (folder / rel).exists()]
    if not (folder / METADATA).exists():
        problems.append(Problem("missing: the adapter's metadata", folder / METADATA,
                                fix=f"train it: locollm train --domain {domain}"))
    for name in ("results.json", "base_results.json", "ood_results.json"):
        if (folder / "eval" / name).exists():
            try:
                read_score(folder / "eval" / name, domain)
            except AdapterError as exc:
                problems.append(exc.problem)
    entry = registry.entries.get(domain)
    if entry is None and not registry_problems and registry_readable:
        problems.append(Problem(f"{domain}: no entry in the registry", registry.path,
                                fix=f"run: locollm adapters register {domain}"))
    problems += registry_problems
    if entry is not None:
        problems += _consistency(domain, folder, entry, registry.path,
                                 registry.lines.get(domain))
    problems += _provenance(domain, folder)
    return problems


def _shared_keywords(registry: Registry) -> dict[str, list[Problem]]:
    """Router keywords claimed by more than one adapter (the router cannot use them)."""
    owners: dict[str, list[str]] = {}
    for domain, entry in registry.entries.items():
        for word in {w.lower() for w in entry.router_keywords}:
            owners.setdefault(word, []).append(domain)
    found: dict[str, list[Problem]] = {}
    for word, domains in sorted(owners.items()):
        for domain in domains if len(domains) > 1 else []:
            others = ", ".join(d for d in domains if d != domain)
            found.setdefault(domain, []).append(Problem(
                f"{domain}: router keyword {word!r} is also claimed by {others}",
                registry.path, registry.lines.get(domain),
                "give each adapter keywords of its own"))
    return found


@dataclass
class ValidationReport:
    """Problems of the registry file and of each adapter checked."""

    registry: Path
    file_problems: list[Problem]
    adapters: dict[str, list[Problem]]

    @property
    def ok(self) -> bool:
        """No problem anywhere."""
        return not self.file_problems and not any(self.adapters.values())


def validate(domains: list[str] | None = None, registry: str | Path | None = None,
             adapters_root: str | Path = ADAPTERS_ROOT) -> ValidationReport:
    """Check adapter folders against the guide's layout and the registry.

    Args:
        domains: domains to check; default every folder under ``adapters_root`` and every
            registry entry.
        registry: registry file (default ``<adapters_root>/registry.yaml``).
        adapters_root: folder holding one folder per domain.
    """
    root = Path(adapters_root)
    path = Path(registry) if registry else registry_path(root)
    reg, problems = validate_registry(path)
    file_problems = problems.pop(None, [])
    if not path.exists():
        file_problems.append(Problem("registry file missing", path,
                                     fix="run: locollm adapters register DOMAIN"))
    for domain, found in _shared_keywords(reg).items():
        problems.setdefault(domain, []).extend(found)
    if not domains:
        folders = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                   } if root.is_dir() else set()
        domains = sorted(folders | set(reg.lines))
    readable = path.exists() and not file_problems
    report = {}
    for name in domains:
        folder = Path(name) if "/" in name else root / name  # a folder path or a domain
        domain = folder.resolve().name
        report[domain] = check_folder(domain, folder, reg, problems.get(domain, []), readable)
    return ValidationReport(path, file_problems, report)
