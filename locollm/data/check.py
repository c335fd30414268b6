"""``locollm data check``: the guide's data quality checklist as pass / warn / fail lines.

Each checklist item becomes one :class:`CheckItem` with its numbers. *Fail* means the data is
wrong as it stands (bad lines, duplicated rows, benchmark items seen in training, empty outputs,
sources missing from a log that exists); *warn* means a person should look (too few examples,
near-duplicates, one difficulty level under-represented). A file from which not one example can
be read is not checked at all: :class:`DataError`, exit 2.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import DataError
from .jsonl import Example, ReadResult, read_jsonl
from .neardup import Duplicates, Pair, find_duplicates, normalize, prompt_texts
from .replay import REPLAY_SOURCE
from .reworded import find_reworded

PASS, WARN, FAIL = "pass", "warn", "fail"
LIST_LIMIT = 20  # located problems kept per item; the counts are always complete
LOG_NAME = "TRAINING_LOG.md"


@dataclass
class CheckItem:
    """One checklist line: status, a one-line summary, located problems and raw numbers."""

    name: str
    status: str
    detail: str
    problems: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)


@dataclass
class CheckReport:
    """All checklist lines for one dataset (and optionally its benchmark)."""

    dataset: str
    benchmark: str | None
    items: list[CheckItem]

    @property
    def failed(self) -> bool:
        """Whether any line failed."""
        return any(i.status == FAIL for i in self.items)

    def to_dict(self) -> dict:
        """JSON-ready form for ``--json``."""
        return {"dataset": self.dataset, "benchmark": self.benchmark, "failed": self.failed,
                "counts": dict(Counter(i.status for i in self.items)),
                "items": [asdict(i) for i in self.items]}


@dataclass
class _Side:
    """One input file, read once."""

    label: str
    path: Path
    read: ReadResult

    @property
    def examples(self) -> list[Example]:
        return self.read.examples

    def where(self, ex: Example) -> str:
        return f"{self.path}:{ex.line}"


def _read(label: str, path: Path) -> _Side:
    result = read_jsonl(path)
    if not result.examples:
        first = result.problems[0]  # read_jsonl reports at least "file is empty"
        count = f"; {len(result.problems)} problems" if len(result.problems) > 1 else ""
        raise DataError(f"{first.message} (no usable example in the {label} file{count})",
                        file=first.file, line=first.line, fix=first.fix,
                        problems=result.problems[1:LIST_LIMIT])
    return _Side(label, path, result)


def _schema(side: _Side) -> CheckItem:
    r = side.read
    if r.problems:
        return CheckItem(f"schema ({side.label})", FAIL,
                         f"{len(r.problems)} bad line(s), {len(r.examples)} good",
                         [str(p) for p in r.problems[:LIST_LIMIT]],
                         {"bad_lines": len(r.problems), "good": len(r.examples)})
    return CheckItem(f"schema ({side.label})", PASS,
                     f"{len(r.examples)} examples, every line an object with non-empty "
                     "string instruction and output", data={"good": len(r.examples)})


def _fields(side: _Side) -> CheckItem:
    """Unknown fields are reported; a file whose lines change keys or types is a warning."""
    r = side.read
    extra = ", ".join(f"{k} ({n})" for k, n in sorted(r.unknown_fields.items())) or "none"
    # Lines that name their "source" (replay data answered by the base, a converted public
    # set) are mixed in on purpose: they are held to one schema among themselves, not to the
    # domain's lines.
    groups: dict[bool, list] = {}
    for shape, seen in sorted(r.shapes.items(), key=lambda kv: -kv[1][0]):
        groups.setdefault(any(k == "source" for k, _ in shape), []).append((shape, seen))
    data = {"unknown_fields": r.unknown_fields, "shapes": len(r.shapes)}
    drifting = [shapes for shapes in groups.values() if len(shapes) > 1]
    if not drifting:
        kinds = " per kind of line (with and without a source)" if len(groups) > 1 else ""
        return CheckItem(f"fields ({side.label})", PASS,
                         f"one schema on every line{kinds}; extra fields: {extra}", data=data)
    problems = []
    for shapes in drifting:
        common = dict(shapes[0][0])
        for shape, (count, first) in shapes[1:LIST_LIMIT]:
            keys = dict(shape)
            diff = [f"no '{k}'" for k in common if k not in keys]
            diff += [f"extra '{k}'" for k in keys if k not in common]
            diff += [f"'{k}' is {t} (elsewhere {common[k]})" for k, t in keys.items()
                     if k in common and common[k] != t]
            problems.append(f"{side.path}:{first}: {', '.join(diff)} "
                            f"({count} line(s) like this)")
    shapes = max(drifting, key=lambda g: g[0][1][0])
    return CheckItem(f"fields ({side.label})", WARN,
                     f"{sum(len(g) for g in drifting)} different schemas; the most common "
                     f"covers {shapes[0][1][0]} lines; extra fields: {extra}",
                     problems[:LIST_LIMIT], data)


def _size(side: _Side, minimum: int) -> CheckItem:
    n = len(side.examples)
    return CheckItem(f"size ({side.label})", PASS if n >= minimum else WARN,
                     f"{n} examples (the guide asks for at least {minimum})",
                     data={"examples": n, "minimum": minimum})


def _exact(train: _Side, dups: Duplicates) -> CheckItem:
    """Identical rows fail; the same prompt with different answers is worth a look."""
    rows, conflicts = [], []
    for group in dups.exact_groups():
        members = [train.examples[i] for i in group if i < len(train.examples)]
        by_output: dict[str, list[Example]] = {}
        for ex in members:
            by_output.setdefault(normalize(ex.output), []).append(ex)
        for same in by_output.values():
            if len(same) > 1:
                rows.append(same)
        if len(by_output) > 1:
            conflicts.append(members)
    extra = sum(len(g) - 1 for g in rows)
    problems = [f"{train.where(g[0])}: repeated at line(s) {', '.join(str(e.line) for e in g[1:])}"
                for g in rows[:LIST_LIMIT]]
    problems += [f"{train.where(g[0])}: same prompt, {len(g)} different outputs at line(s) "
                 f"{', '.join(str(e.line) for e in g)}" for g in conflicts[:LIST_LIMIT]]
    data = {"duplicate_rows": extra, "groups": len(rows), "conflicting_prompts": len(conflicts)}
    if rows:
        return CheckItem("exact duplicates (training)", FAIL,
                         f"{extra} row(s) repeat another row (after normalising case, spacing "
                         "and punctuation); delete the copies", problems, data)
    if conflicts:
        return CheckItem("exact duplicates (training)", WARN,
                         f"no repeated rows, but {len(conflicts)} prompt(s) have several "
                         "different outputs", problems, data)
    return CheckItem("exact duplicates (training)", PASS, "no repeated rows", data=data)


def _training_pairs(train: _Side, pairs: list[Pair]) -> tuple[list[Pair], list[str]]:
    """Pairs within the training side, most similar first, and their located lines."""
    n = len(train.examples)
    inside = sorted((p for p in pairs if p.a < n and p.b < n), key=lambda p: -p.similarity)
    return inside, [f"{train.where(train.examples[p.a])} ~ line {train.examples[p.b].line} "
                    f"(similarity {p.similarity:.2f})" for p in inside[:LIST_LIMIT]]


def _near(train: _Side, dups: Duplicates, threshold: float) -> CheckItem:
    pairs, problems = _training_pairs(train, dups.pairs)
    data = {"pairs": len(pairs), "threshold": threshold, "boilerplate_shingles":
            dups.boilerplate, "top": [{"a": train.examples[p.a].line, "b":
                                       train.examples[p.b].line, "similarity": p.similarity}
                                      for p in pairs[:LIST_LIMIT]]}
    if pairs:
        return CheckItem("near-duplicates (training)", WARN,
                         f"{len(pairs)} pair(s) of prompts at Jaccard >= {threshold} "
                         "(word 3-grams, MinHash); keep one of each unless they really differ",
                         problems, data)
    return CheckItem("near-duplicates (training)", PASS,
                     f"no two prompts at Jaccard >= {threshold} (word 3-grams, MinHash; "
                     f"{dups.boilerplate} template shingles ignored)", data=data)


def _reworded(train: _Side, pairs: list[Pair]) -> CheckItem:
    inside, problems = _training_pairs(train, pairs)
    if not inside:
        return CheckItem("reworded examples (training)", PASS,
                         "no two examples are one problem reworded (whole examples, "
                         "IDF-weighted words, numbers must match)", data={"pairs": 0})
    return CheckItem("reworded examples (training)", WARN,
                     f"{len(inside)} pair(s) of examples are one problem reworded (same "
                     "numbers and answer, few words changed); keep one of each",
                     problems, {"pairs": len(inside)})


def _contamination(train: _Side, bench: _Side, dups: Duplicates,
                   threshold: float, reworded: list[Pair]) -> CheckItem:
    """A benchmark item whose prompt is (nearly) in training measures memory, not skill."""
    n = len(train.examples)
    also: dict[int, list[tuple[int, float]]] = {}
    for p in reworded:
        if p.a < n <= p.b:
            also.setdefault(p.b - n, []).append((p.a, p.similarity))
    hits = []
    for j, ex in enumerate(bench.examples):
        best = [(i, sim) for i, sim in dups.related(n + j) if i < n] + also.get(j, [])
        if best:
            i, sim = max(best, key=lambda t: (t[1], -t[0]))
            hits.append((ex, train.examples[i], sim))
    problems = [f"{bench.where(b)}: {'same as' if s == 1.0 else 'near'} "
                f"{train.where(t)} (similarity {s:.2f})" for b, t, s in hits[:LIST_LIMIT]]
    data = {"contaminated": len(hits), "benchmark": len(bench.examples),
            "threshold": threshold}
    if hits:
        return CheckItem("benchmark separate from training", FAIL,
                         f"{len(hits)} of {len(bench.examples)} benchmark prompts are in the "
                         "training set or near it; remove them from one side "
                         "(`locollm data split` keeps near-duplicates together)", problems, data)
    return CheckItem("benchmark separate from training", PASS,
                     f"none of {len(bench.examples)} benchmark prompts is within Jaccard "
                     f"{threshold} of a training prompt or a reworded training example",
                     data=data)


def _difficulty(train: _Side, bench: _Side | None) -> CheckItem:
    levels = Counter(str(e.extra["difficulty"]) for e in train.examples
                     if "difficulty" in e.extra)
    if not levels:
        return CheckItem("difficulty spread", WARN, "no 'difficulty' field, so the guide's "
                         "'difficulty is varied' cannot be checked; add easy/medium/hard")
    total = sum(levels.values())
    detail = ", ".join(f"{k} {v} ({v / total:.0%})" for k, v in sorted(levels.items()))
    data = {"training": dict(levels)}
    if bench is not None:
        bl = Counter(str(e.extra.get("difficulty", "none")) for e in bench.examples)
        data["benchmark"] = dict(bl)
        detail += "; benchmark " + ", ".join(f"{k} {v}" for k, v in sorted(bl.items()))
    if len(levels) == 1:
        return CheckItem("difficulty spread", FAIL, f"every example is {detail}; the guide "
                         "asks for varied difficulty", data=data)
    rare = [k for k, v in levels.items() if v / total < 0.1]
    if rare:
        return CheckItem("difficulty spread", WARN, f"{detail}; under 10%: {', '.join(rare)}",
                         data=data)
    return CheckItem("difficulty spread", PASS, detail, data=data)


def _percentiles(values: list[int]) -> dict[str, int]:
    ordered = sorted(values)
    return {"min": ordered[0], "median": int(statistics.median(ordered)),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1]}


def _lengths(train: _Side, max_tokens: int) -> CheckItem:
    """Training refuses examples over max_seq_len tokens, so flag the likely ones early."""
    prompt = [len(e.prompt) for e in train.examples]
    output = [len(e.output) for e in train.examples]
    # about 3 characters per token is conservative for English with digits split one by one
    long = [e for e, p, o in zip(train.examples, prompt, output, strict=True)
            if (p + o) / 3 > max_tokens]
    p, o = _percentiles(prompt), _percentiles(output)
    detail = (f"prompt chars median {p['median']}, p95 {p['p95']}, max {p['max']}; output "
              f"chars median {o['median']}, p95 {o['p95']}, max {o['max']}")
    data = {"prompt_chars": p, "output_chars": o, "likely_over_max_seq_len": len(long)}
    if long:
        return CheckItem("lengths", WARN, f"{detail}; {len(long)} example(s) probably exceed "
                         f"{max_tokens} tokens (raise max_seq_len or shorten them)",
                         [f"{train.where(e)}: {len(e.prompt) + len(e.output)} characters"
                          for e in long[:LIST_LIMIT]], data)
    return CheckItem("lengths", PASS, detail, data=data)


def _empty_outputs(sides: list[_Side]) -> CheckItem:
    lines = [f"{s.path}:{n}" for s in sides for n in s.read.empty_outputs]
    if lines:
        return CheckItem("empty outputs", FAIL, f"{len(lines)} output(s) are empty or only "
                         "whitespace: the model would learn to say nothing", lines[:LIST_LIMIT],
                         {"empty": len(lines)})
    return CheckItem("empty outputs", PASS, "no empty or whitespace-only output",
                     data={"empty": 0})


def _repeated_outputs(train: _Side) -> CheckItem:
    """One answer given to many different prompts teaches the model to ignore the prompt."""
    prompts: dict[str, set[str]] = {}
    first: dict[str, Example] = {}
    for ex in train.examples:
        key = normalize(ex.output)
        prompts.setdefault(key, set()).add(normalize(ex.prompt))
        first.setdefault(key, ex)
    limit = max(3, len(train.examples) // 100)
    common = sorted(((len(p), k) for k, p in prompts.items() if len(p) >= limit), reverse=True)
    data = {"outputs_over_limit": len(common), "limit": limit,
            "most_common": common[0][0] if common else max(map(len, prompts.values()))}
    if common:
        problems = [f"{train.where(first[k])}: this output answers {n} different prompts"
                    for n, k in common[:LIST_LIMIT]]
        return CheckItem("repeated outputs", WARN, f"{len(common)} output(s) each answer "
                         f"{limit}+ different prompts (fine for a classifier, not for "
                         "generation)", problems, data)
    return CheckItem("repeated outputs", PASS, f"no output answers {limit}+ different "
                     f"prompts (most: {data['most_common']})", data=data)


def find_log(dataset: Path) -> Path | None:
    """The adapter's TRAINING_LOG.md: next to the dataset, or in the adapter's training/."""
    for candidate in (dataset.parent / LOG_NAME, dataset.parent.parent / LOG_NAME,
                      dataset.parent.parent / "training" / LOG_NAME):
        if candidate.is_file():
            return candidate
    return None


def source_names(train: _Side, bench: _Side | None) -> list[str]:
    """What a log must name: the data files, a generator script beside them, every `source`."""
    names = [train.path.name] + ([bench.path.name] if bench else [])
    generator = train.path.parent / "generate_data.py"
    if generator.exists():
        names.append(generator.name)
    sources = {str(e.extra["source"]) for e in train.examples if e.extra.get("source")}
    return names + sorted(sources)


def _sources(train: _Side, bench: _Side | None, log: Path | None) -> CheckItem:
    log = log or find_log(train.path)
    names = source_names(train, bench)
    if log is None:
        return CheckItem("sources documented", WARN, f"no {LOG_NAME} next to the dataset or "
                         "in its adapter folder; pass --log, or create one with `locollm "
                         "adapters new`", data={"expected": names})
    try:
        text = log.read_text(encoding="utf-8", errors="replace").lower()
    except OSError as exc:
        raise DataError(f"cannot read the training log ({exc.strerror})", file=log) from exc

    def named(name: str) -> bool:
        return name.lower() in text or Path(name).name.lower() in text

    missing = [n for n in names if not named(n)]
    data = {"log": str(log), "expected": names, "missing": missing}
    if missing:
        return CheckItem("sources documented", FAIL, f"{log} does not name "
                         f"{len(missing)} of {len(names)} source(s)",
                         [f"{log}: add a line on {name!r}: where it came from and how it was "
                          "made or filtered" for name in missing[:LIST_LIMIT]], data)
    return CheckItem("sources documented", PASS, f"{log} names all {len(names)} source(s): "
                     + ", ".join(names[:8]) + (" ..." if len(names) > 8 else ""), data=data)


def check_dataset(dataset: str | Path, benchmark: str | Path | None = None,
                  min_train: int = 500, min_bench: int = 50, *, threshold: float = 0.8,
                  max_tokens: int = 512, log: str | Path | None = None) -> CheckReport:
    """Run the guide's checklist on a training JSONL and optionally its benchmark JSONL.

    Args:
        dataset: training JSONL.
        benchmark: held-out JSONL; checked on its own and for contamination.
        min_train: the guide's minimum number of training examples.
        min_bench: the guide's minimum benchmark size.
        threshold: Jaccard similarity at which two prompts are near-duplicates.
        max_tokens: the training max_seq_len that lengths are compared against.
        log: the TRAINING_LOG.md to look for sources in (default: found beside the data).

    Raises:
        DataError: a file is missing or not one example in it can be read (exit 2).
    """
    train = _read("training", Path(dataset))
    bench = _read("benchmark", Path(benchmark)) if benchmark is not None else None
    both = train.examples + (bench.examples if bench else [])
    dups = find_duplicates(prompt_texts([(e.instruction, e.input) for e in both]), threshold)
    # A replay example is judged by its question alone: its answer is the base's own (often
    # the same rambling list for different questions), not a curated output.
    reworded = find_reworded([(e.instruction, e.input,
                               "" if e.extra.get("source") == REPLAY_SOURCE else e.output)
                              for e in both])
    items = [_schema(train), _fields(train), _size(train, min_train), _exact(train, dups),
             _near(train, dups, threshold), _reworded(train, reworded)]
    if bench is not None:
        items += [_schema(bench), _fields(bench), _size(bench, min_bench),
                  _contamination(train, bench, dups, threshold, reworded)]
    else:
        items.append(CheckItem("benchmark separate from training", WARN,
                               "not checked: pass --benchmark eval/benchmark.jsonl"))
    items += [_difficulty(train, bench), _lengths(train, max_tokens),
              _empty_outputs([train] + ([bench] if bench else [])), _repeated_outputs(train),
              _sources(train, bench, Path(log) if log else None)]
    return CheckReport(str(dataset), str(benchmark) if benchmark else None, items)


def render(report: CheckReport, limit: int = LIST_LIMIT) -> list[tuple[str, str]]:
    """Human-readable lines as (status, text) pairs; the CLI colours the status."""
    lines = []
    for item in report.items:
        lines.append((item.status, f"{item.name}: {item.detail}"))
        lines += [("", f"    {p}") for p in item.problems[:limit]]
    counts = Counter(i.status for i in report.items)
    verdict = "FAILED" if report.failed else "ok"
    lines.append(("", f"{verdict}: {counts[PASS]} pass, {counts[WARN]} warn, "
                      f"{counts[FAIL]} fail"))
    return lines

