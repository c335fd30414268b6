"""``locollm data synth``: synthetic examples from any OpenAI-compatible endpoint (guide Option B).

Each request sends the guide's template (or your own) to ``POST {endpoint}/chat/completions``.
Answers are checked in order: a JSON object with the schema (``schema``), not an exact or near
duplicate of an accepted example or of the existing dataset (``duplicate``), not a benchmark
prompt (``contamination``), and accepted by the domain validator if one is given
(``validator``). Accepted examples go to the output JSONL, rejected ones with their reason to a
second JSONL, both rewritten atomically after every batch so an interrupted run keeps the
finished batches. The run's rejection rate is appended to TRAINING_LOG.md, as the guide asks.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import json
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LocollmError, Problem
from ..paths import atomic_write
from .jsonl import read_jsonl, to_example, write_jsonl
from .neardup import find_duplicates, prompt_texts

TEMPLATE = """\
Generate a {domain} training example for a language model.

The example should have:
- An instruction telling the model what to do
- An input providing the specific problem or context
- An output showing the ideal response

Requirements for the output:
- {criteria}
- {format}
- {detail}

Generate one example now in this JSON format:
{{"instruction": "...", "input": "...", "output": "..."}}"""

Validator = Callable[[dict], object]


class SynthError(LocollmError):
    """The endpoint cannot be used (unreachable, refused the key, answers garbage)."""


@dataclass
class SynthConfig:
    """One generation run."""

    # Base URL of an OpenAI-compatible API, e.g. https://api.openai.com/v1 or
    # http://127.0.0.1:8000/v1 (locollm serve).
    endpoint: str
    # Model name the endpoint expects.
    model: str
    # Accepted examples are written here (JSONL); an existing file is extended.
    output: Path
    # What to generate: the {domain} of the guide's template.
    domain: str
    # The template's quality criteria, format requirements and level of detail.
    criteria: str = "Correct, complete and unambiguous"
    format: str = "Plain text, ending with the final answer"
    detail: str = "Show every step a student would need"
    # A file with your own template (placeholders: {domain} {criteria} {format} {detail}).
    template: Path | None = None
    # Requests to send in all, and how many per batch (the unit that is written and reported).
    count: int = 50
    batch_size: int = 10
    # Requests in flight at once.
    workers: int = 4
    temperature: float = 1.0
    max_tokens: int = 1024
    # Environment variable holding the API key (sent as a Bearer token when set).
    api_key_env: str = "OPENAI_API_KEY"
    # "file.py:function" or "module:function" returning None/True (keep) or a reason (reject).
    validator: str | None = None
    # A benchmark whose prompts generated examples must not repeat.
    benchmark: Path | None = None
    # Rejected examples and their reasons (default: OUTPUT with .rejected.jsonl).
    rejected: Path | None = None
    # The training log the rejection rate is appended to (default: beside OUTPUT).
    log: Path | None = None
    threshold: float = 0.8
    timeout: float = 120.0
    retries: int = 2

    def __post_init__(self) -> None:
        self.output = Path(self.output)
        self.rejected = Path(self.rejected) if self.rejected else \
            self.output.with_name(self.output.stem + ".rejected.jsonl")
        self.log = Path(self.log) if self.log else self.output.parent / "TRAINING_LOG.md"
        if self.count < 1 or self.batch_size < 1 or self.workers < 1:
            raise LocollmError("--count, --batch-size and --workers must be at least 1")


@dataclass
class SynthResult:
    """Totals of one run."""

    accepted: int = 0
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    batches: int = 0

    @property
    def rejection_rate(self) -> float:
        """Rejected share of all answers received."""
        total = self.accepted + self.rejected
        return self.rejected / total if total else 0.0


def render_prompt(cfg: SynthConfig) -> str:
    """The guide's template (or ``cfg.template``) filled in."""
    template = TEMPLATE
    if cfg.template:
        try:
            template = Path(cfg.template).read_text(encoding="utf-8")
        except OSError as exc:
            raise LocollmError(f"cannot read the template ({exc.strerror})",
                               file=cfg.template) from exc
    try:
        return template.format(domain=cfg.domain, criteria=cfg.criteria, format=cfg.format,
                               detail=cfg.detail)
    except (KeyError, IndexError, ValueError) as exc:
        raise LocollmError(f"bad template placeholder {exc}", file=cfg.template,
                           fix="use only {domain} {criteria} {format} {detail}; "
                               "write literal braces as {{ }}") from exc


def load_validator(spec: str) -> Validator:
    """Import ``path/to/file.py:function`` or ``package.module:function``."""
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise LocollmError(f"validator {spec!r} must be FILE.py:FUNCTION or MODULE:FUNCTION")
    try:
        if target.endswith(".py"):
            loader = importlib.util.spec_from_file_location("locollm_validator", target)
            if loader is None or not Path(target).is_file():
                raise FileNotFoundError(target)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        return getattr(module, name)
    except (ImportError, FileNotFoundError, AttributeError, SyntaxError) as exc:
        raise LocollmError(f"cannot load validator {spec!r}: {exc}",
                           fix="point at a file and a function in it, e.g. "
                               "adapters/math/training/validate.py:validate") from exc


def _post(cfg: SynthConfig, prompt: str) -> str:
    """One chat completion; retried on 429/5xx and network errors, not on a 4xx mistake."""
    body = json.dumps({"model": cfg.model, "temperature": cfg.temperature,
                       "max_tokens": cfg.max_tokens,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    headers = {"Content-Type": "application/json"}
    if os.environ.get(cfg.api_key_env):
        headers["Authorization"] = f"Bearer {os.environ[cfg.api_key_env]}"
    url = cfg.endpoint.rstrip("/") + "/chat/completions"
    for attempt in range(cfg.retries + 1):
        try:
            req = urllib.request.Request(url, body, headers, method="POST")
            with urllib.request.urlopen(req, timeout=cfg.timeout) as resp:
                data = json.loads(resp.read())
            content = data["choices"][0]["message"]["content"]
            return content if isinstance(content, str) else ""  # e.g. a refusal: null
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            if exc.code in (401, 403):
                raise SynthError(f"{url} refused the request (HTTP {exc.code}): {detail}",
                                 fix=f"set {cfg.api_key_env} to a valid API key") from exc
            if exc.code != 429 and exc.code < 500 or attempt == cfg.retries:
                raise SynthError(f"{url} answered HTTP {exc.code}: {detail}",
                                 fix="check --endpoint and --model") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            if attempt == cfg.retries:
                raise SynthError(f"cannot reach {url} ({getattr(exc, 'reason', exc)})",
                                 fix="check --endpoint; is the server running?") from exc
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise SynthError(f"{url} did not answer like an OpenAI chat completion ({exc})",
                             fix="point --endpoint at the /v1 base of an OpenAI-compatible "
                                 "API") from exc
        time.sleep(min(2 ** attempt, 10))
    raise AssertionError("unreachable")


def parse_example(text: str) -> tuple[dict | None, str | None]:
    """The first JSON object in a model's answer (fences and chatter around it allowed)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        problems: list[Problem] = []
        example = to_example(obj, problems)
        if example is None:
            return None, "; ".join(p.message for p in problems)
        return {"instruction": example.instruction, "input": example.input,
                "output": example.output}, None
    return None, "no JSON object in the answer"


def _validate(row: dict, validator: Validator | None) -> str:
    if validator is None:
        return ""
    try:
        verdict = validator(dict(row))
    except Exception as exc:  # a user's validator may raise anything; that is a rejection
        return f"validator: raised {type(exc).__name__}: {exc}"
    if verdict is None or verdict is True:
        return ""
    return f"validator: {verdict if isinstance(verdict, str) else 'rejected'}"


def screen(answers: list[str], accepted: list[dict], benchmark: list[tuple[str, str]],
           validator: Validator | None, threshold: float = 0.8) -> list[tuple[dict | None, str]]:
    """Judge one batch of answers in order: ``(row, "")`` to keep, ``(row, reason)`` to reject.

    One duplicate search covers the benchmark, everything accepted so far and the batch, so
    a batch costs one pass however large the dataset already is.
    """
    parsed = [parse_example(a) for a in answers]
    rows = [row for row, _ in parsed if row is not None]
    nb, na = len(benchmark), len(accepted)
    prompts = benchmark + [(r["instruction"], r.get("input") or "") for r in accepted + rows]
    dups = find_duplicates(prompt_texts(prompts), threshold)
    kept: set[int] = set()
    out, k = [], nb + na
    for row, why in parsed:
        if row is None:
            out.append((None, f"schema: {why}"))
            continue
        related = dups.related(k)
        bench_hit = max((s for i, s in related if i < nb), default=None)
        dup_hit = max((s for i, s in related if nb <= i < nb + na or i in kept), default=None)
        if bench_hit is not None:
            why = f"contamination: a benchmark prompt at similarity {bench_hit:.2f}"
        elif dup_hit is not None:
            why = f"duplicate: an accepted prompt at similarity {dup_hit:.2f}"
        else:
            why = _validate(row, validator)
        if not why:
            kept.add(k)
        out.append((row, why))
        k += 1
    return out


def synthesize(cfg: SynthConfig, on_batch: Callable[[int, SynthResult], None] | None = None
               ) -> SynthResult:
    """Generate ``cfg.count`` answers in batches; keep the good ones, log the rest.

    Raises:
        SynthError: the endpoint is unreachable, refuses the key or answers garbage.
        LocollmError: a bad template, validator, benchmark or existing output file.
    """
    prompt = render_prompt(cfg)
    validator = load_validator(cfg.validator) if cfg.validator else None
    accepted = _existing_examples(cfg.output)
    rejected = _existing_rows(cfg.rejected)
    bench = [(e.instruction, e.input) for e in read_jsonl(cfg.benchmark).examples] \
        if cfg.benchmark else []
    result = SynthResult()
    try:
        _run_batches(cfg, prompt, validator, accepted, rejected, bench, result, on_batch)
    finally:  # an interrupted run still records the batches it finished
        if result.batches:
            append_log(cfg, result)
    return result


def _run_batches(cfg: SynthConfig, prompt: str, validator: Validator | None,
                 accepted: list[dict], rejected: list[dict], bench: list[tuple[str, str]],
                 result: SynthResult, on_batch: Callable | None) -> None:
    source = f"synth:{cfg.model}"
    with ThreadPoolExecutor(max_workers=min(cfg.workers, cfg.batch_size)) as pool:
        for start in range(0, cfg.count, cfg.batch_size):
            n = min(cfg.batch_size, cfg.count - start)
            answers = list(pool.map(lambda _: _post(cfg, prompt), range(n)))
            for answer, (row, why) in zip(answers, screen(answers, accepted, bench, validator,
                                                          cfg.threshold), strict=True):
                if why:
                    result.rejected += 1
                    result.reasons[why.split(":")[0]] += 1
                    rejected.append({"reason": why, "example": row, "raw": answer})
                else:
                    accepted.append({**row, "source": source})
                    result.accepted += 1
            write_jsonl(cfg.output, accepted)
            write_jsonl(cfg.rejected, rejected)
            result.batches += 1
            if on_batch:
                on_batch(result.batches, result)


def _existing_examples(path: Path) -> list[dict]:
    """An output file being extended must be valid: new examples are checked against it."""
    if not path.exists():
        return []
    read = read_jsonl(path)
    if read.problems:
        raise LocollmError(f"the existing output has {len(read.problems)} bad line(s); first: "
                           f"{read.problems[0]}", file=path,
                           fix="fix it (see `locollm data check`) or write to a new file")
    return [e.to_json() for e in read.examples]


def _existing_rows(path: Path) -> list[dict]:
    """Earlier rejections are kept as they are; an unreadable line is kept as text."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                rows.append({"reason": "unreadable earlier line", "raw": line})
    return rows


def append_log(cfg: SynthConfig, result: SynthResult) -> Path:
    """Append this run's numbers to the training log (created if missing), atomically."""
    log = Path(cfg.log)
    old = log.read_text(encoding="utf-8") if log.exists() else \
        "# Training log\n\n## Data sources\n"
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(result.reasons.items())) or "none"
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    entry = (f"\n### Synthetic generation, {when} (`locollm data synth`)\n\n"
             f"- source `synth:{cfg.model}` at {cfg.endpoint}, temperature {cfg.temperature}, "
             f"domain: {cfg.domain}\n"
             f"- {result.accepted + result.rejected} answers in {result.batches} batch(es) of "
             f"up to {cfg.batch_size}: {result.accepted} accepted, {result.rejected} rejected "
             f"(rejection rate {result.rejection_rate:.1%}; {reasons})\n"
             f"- accepted examples: `{cfg.output.name}`; rejected, with reasons: "
             f"`{cfg.rejected.name}`\n")
    return atomic_write(log, old.rstrip("\n") + "\n" + entry)
