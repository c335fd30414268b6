"""``adapters/registry.yaml``: the catalogue of shipped adapters, in the guide's Phase 5 format.

One entry per domain (``version``, ``base_model``, ``quantization``, ``lora_rank``, ``created``,
``authors``, ``benchmark_score``, ``base_model_score``, ``improvement``, ``description``,
``tags``, ``size_mb``, ``router_keywords``). This module loads and validates the file (every
problem collected, with its line and a fix) and writes one entry without disturbing the rest
of the file (comments included). The keyword router reads ``router_keywords`` from here.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, Problem
from ..paths import atomic_write
from .meta import ADAPTERS_ROOT
from .scaffold import SLUG

REGISTRY_NAME = "registry.yaml"

HEADER = """\
# LocoLLM adapter registry: one entry per shipped adapter (adapter development guide, Phase 5).
#
# Write or refresh an entry from its folder (metadata + eval results):
#   locollm adapters register DOMAIN --author "Team, ISYS6020" --description "..." \\
#       --keyword word --keyword "two words"
# Check every folder against the guide's layout and this file:
#   locollm adapters validate
#
# Keys of an entry:
#   version           "MAJOR.MINOR.PATCH" of the adapter (quote it)
#   base_model        the base it was trained on and runs on (from locollm.json)
#   quantization      the served base GGUF's quantization, e.g. Q4_K_M
#   lora_rank         LoRA rank r
#   created           when it was made, e.g. "2026-S2" or "2026-03-01"
#   authors           team and course, e.g. ["Team Name, ISYS6020"]
#   benchmark_score   adapter score on eval/benchmark.jsonl (0..1, eval/results.json)
#   base_model_score  base model score on the same benchmark (eval/base_results.json)
#   improvement       the gain in percentage points, with the relative gain when the base is
#                     not near zero: "+31.0 pts (+75.6%)" for 0.72 vs 0.41, "+60.0 pts" for
#                     0.617 vs 0.017 (a relative figure over a near-zero base means nothing)
#   description       one line on what the adapter does
#   tags              search keywords
#   size_mb           size of adapter_model.safetensors in MB
#   router_keywords   words that make `loco route` / model "auto" pick this adapter
#                     (whole words, case-insensitive)
"""

_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
# "+31.0 pts (+75.6%)", "+60.0 pts", or the guide's example form "+75.6%"
_NUMBER = r"[+-]\d+(?:\.\d+)?"
_IMPROVEMENT = re.compile(rf"^(?:(?P<points>{_NUMBER}) pts(?: \((?P<rel>{_NUMBER})%\))?"
                          rf"|(?P<only>{_NUMBER})%)$")
# below this base score a relative gain is left out: +3592.8% over 1/60 tells nothing
NEAR_ZERO_BASE = 0.10


@dataclass
class RegistryEntry:
    """One adapter's entry, the guide's keys in the guide's order."""

    version: str = "1.0.0"
    base_model: str = ""
    quantization: str = ""
    lora_rank: int = 0
    created: str = ""
    authors: list[str] = field(default_factory=list)
    benchmark_score: float = 0.0
    base_model_score: float = 0.0
    improvement: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    size_mb: float = 0.0
    router_keywords: list[str] = field(default_factory=list)


FIELDS = tuple(f.name for f in fields(RegistryEntry))


@dataclass
class Registry:
    """A loaded registry: entries by domain, and the line each entry starts on."""

    path: Path
    entries: dict[str, RegistryEntry]
    lines: dict[str, int] = field(default_factory=dict)


def registry_path(root: str | Path = ADAPTERS_ROOT) -> Path:
    """Where the registry of an adapters folder lives."""
    return Path(root) / REGISTRY_NAME


def improvement(score: float, base_score: float) -> str:
    """The gain in points, with the relative gain when the base is not near zero.

    ``improvement(0.72, 0.41)`` is ``"+31.0 pts (+75.6%)"``; ``improvement(0.617, 0.017)`` is
    ``"+60.0 pts"``. Pass the unrounded scores (correct / total).
    """
    text = f"{(score - base_score) * 100:+.1f} pts"
    if base_score >= NEAR_ZERO_BASE:
        text += f" ({(score - base_score) / base_score * 100:+.1f}%)"
    return text


def parse_improvement(text: str) -> tuple[float | None, float | None] | None:
    """(points, relative %) of an improvement string (either may be None); None if malformed."""
    match = _IMPROVEMENT.match(text) if isinstance(text, str) else None
    if not match:
        return None
    points = float(match["points"]) if match["points"] else None
    rel = match["rel"] or match["only"]
    return points, float(rel) if rel else None


def improvement_mismatch(stated: str, score: float, base_score: float,
                         tolerance: float = 0.15) -> str | None:
    """Why ``stated`` does not describe these scores (None when it does)."""
    expected = improvement(score, base_score)
    parsed = parse_improvement(stated)
    if parsed is None:
        return f"improvement {stated!r} is not like {expected!r}"
    points, rel = parsed
    if points is None:
        if base_score < NEAR_ZERO_BASE:
            return (f"improvement {stated!r} is relative to a base near zero; write it in "
                    f"points: {expected!r}")
        points = (score - base_score) * 100  # the guide's relative-only form
    if abs(points - (score - base_score) * 100) > tolerance:
        return f"improvement {stated!r} does not match the scores (expected {expected!r})"
    if rel is not None and (base_score <= 0 or
                            abs(rel - (score - base_score) / base_score * 100) > tolerance):
        return f"improvement {stated!r} does not match the scores (expected {expected!r})"
    return None


# ------------------------------------------------------------------------------ validation
def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _field_problem(key: str, value: Any) -> tuple[str, str] | None:
    """What is wrong with one field's value, and the fix; None when it is fine."""
    if key == "version":
        if not (isinstance(value, str) and _VERSION.match(value)):
            return f"version {value!r} is not MAJOR.MINOR.PATCH", 'quote it: version: "1.0.0"'
    elif key in ("base_model", "quantization", "created", "description"):
        if not (isinstance(value, str) and value.strip()):
            return f"{key} must be a non-empty string", f'set {key}: "..."'
    elif key == "lora_rank":
        if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            return f"lora_rank {value!r} must be a positive integer", "use the rank in locollm.json"
    elif key in ("benchmark_score", "base_model_score"):
        if not (_is_number(value) and 0 <= value <= 1):
            return f"{key} {value!r} must be a number from 0 to 1", "run: locollm adapters register"
    elif key == "size_mb":
        if not (_is_number(value) and value >= 0):
            return f"size_mb {value!r} must be a number >= 0", "run: locollm adapters register"
    elif key == "improvement":
        if parse_improvement(value) is None:
            return (f"improvement {value!r} is not like \"+31.0 pts (+75.6%)\"",
                    "run: locollm adapters register")
    elif key in ("authors", "router_keywords") and not (_is_str_list(value) and value):
        return f"{key} must be a non-empty list of strings", f'set {key}: ["...", "..."]'
    elif key == "tags" and not _is_str_list(value):
        return "tags must be a list of strings", 'set tags: ["...", "..."]'
    return None


def _entry_problems(domain: str, data: Any, path: Path, line: int,
                    lines: dict[str, int]) -> list[Problem]:
    """Every problem of one entry; ``lines`` gives the line of each of its keys."""
    if not SLUG.match(domain):  # the names `locollm adapters new` accepts
        return [Problem(f"domain {domain!r} is not a lowercase slug like 'legal-qa'",
                        path, line, "rename the entry and its folder")]
    if not isinstance(data, dict):
        return [Problem(f"entry {domain!r} must be a mapping of the guide's keys", path, line,
                        f"keys: {', '.join(FIELDS)}")]
    problems = []
    missing = [k for k in FIELDS if k not in data]
    if missing:
        problems.append(Problem(f"entry {domain!r} lacks {', '.join(missing)}", path, line,
                                f"run: locollm adapters register {domain}"))
    for key, value in data.items():
        where = lines.get(str(key), line)
        if key not in FIELDS:
            problems.append(Problem(f"unknown key {key!r} in {domain!r}", path, where,
                                    f"valid keys: {', '.join(FIELDS)}"))
            continue
        found = _field_problem(key, value)
        if found:
            problems.append(Problem(f"{domain}: {found[0]}", path, where, found[1]))
    if not problems:
        score, base = data["benchmark_score"], data["base_model_score"]
        wrong = improvement_mismatch(data["improvement"], score, base)
        if wrong:
            problems.append(Problem(f"{domain}: {wrong}", path, lines.get("improvement", line),
                                    f'set improvement: "{improvement(score, base)}"'))
    return problems


def _parse(text: str, path: Path) -> tuple[yaml.MappingNode | None, yaml.SafeLoader]:
    """The top node of the registry (None when empty), and the loader to construct values."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", file=path,
                          line=mark.line + 1 if mark else None,
                          fix="check the indentation and quoting near that line") from exc
    if node is not None and not isinstance(node, yaml.MappingNode):
        raise ConfigError("the registry must map each domain to its entry", file=path,
                          line=node.start_mark.line + 1, fix="start each entry with `domain:`")
    return node, loader


def validate_registry(path: str | Path) -> tuple[Registry, dict[str | None, list[Problem]]]:
    """Read a registry and collect every problem, keyed by domain (None: the whole file).

    Valid entries are returned even when others are broken. A missing file is an empty
    registry.
    """
    path = Path(path)
    registry = Registry(path, {})
    if not path.exists():
        return registry, {}
    try:
        node, loader = _parse(path.read_text(encoding="utf-8"), path)
    except ConfigError as exc:
        return registry, {None: [exc.problem]}
    problems: dict[str | None, list[Problem]] = {}
    for key_node, value_node in node.value if node is not None else []:
        domain = str(loader.construct_object(key_node, deep=True))
        line = key_node.start_mark.line + 1
        if domain in registry.lines:
            problems.setdefault(domain, []).append(Problem(
                f"{domain!r} is listed twice (first on line {registry.lines[domain]})", path,
                line, "keep one entry per domain"))
            continue
        registry.lines[domain] = line
        data = loader.construct_object(value_node, deep=True)
        key_lines = ({str(k.value): k.start_mark.line + 1 for k, _ in value_node.value}
                     if isinstance(value_node, yaml.MappingNode) else {})
        found = _entry_problems(domain, data, path, line, key_lines)
        if found:
            problems.setdefault(domain, []).extend(found)
        else:
            registry.entries[domain] = RegistryEntry(**data)
    return registry, problems


def load_registry(path: str | Path | None = None) -> Registry:
    """Load and validate a registry (default ``adapters/registry.yaml``; missing means empty).

    Raises:
        ConfigError: with every problem found, each with its line and a fix.
    """
    path = Path(path) if path else registry_path()
    registry, problems = validate_registry(path)
    flat = [p for group in problems.values() for p in group]
    if flat:
        raise ConfigError(f"{len(flat)} problem(s) in the adapter registry", file=path,
                          fix="correct them, then run `locollm adapters validate`",
                          problems=flat)
    return registry


# ---------------------------------------------------------------------------------- writing
def render_entry(domain: str, entry: RegistryEntry) -> str:
    """An entry as YAML in the guide's style (quoted strings, flow lists), keys in order."""
    lines = [f"{domain}:"]
    for key, value in asdict(entry).items():
        lines.append(f"  {key}: {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def _entry_span(lines: list[str], key_node: yaml.Node, value_node: yaml.Node) -> tuple[int, int]:
    """0-based [start, end) lines of one entry; comments and blanks after it stay outside."""
    start = key_node.start_mark.line
    mark = value_node.end_mark
    end = mark.line + (1 if mark.column > 0 else 0)
    while end > start + 1 and (not lines[end - 1].strip() or
                               lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return start, end


def write_entry(path: str | Path, domain: str, entry: RegistryEntry) -> Path:
    """Add or replace ``domain``'s entry; every other line of the file stays as it was.

    The new text is parsed back and checked before it atomically replaces the file.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    node, loader = _parse(text, path)
    lines = text.splitlines(keepends=True)
    block = render_entry(domain, entry).splitlines(keepends=True)
    span = next((_entry_span(lines, k, v) for k, v in (node.value if node else [])
                 if str(loader.construct_object(k, deep=True)) == domain), None)
    if span:
        lines[span[0]:span[1]] = block
    else:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        if lines and lines[-1].strip():
            lines.append("\n")
        lines += block
    new_text = "".join(lines)
    check = yaml.safe_load(new_text)
    if not isinstance(check, dict) or check.get(domain) != asdict(entry):
        raise ConfigError(f"could not place the entry for {domain!r} in the registry",
                          file=path, fix="fix the file's layout by hand; nothing was written")
    return atomic_write(path, new_text)
