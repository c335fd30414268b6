"""``locollm data convert``: public datasets (guide Option A) into locollm JSONL.

Every source goes through the ``datasets`` library. A hub name (``openai/gsm8k``) and a local
folder laid out like a hub repository take the very same ``load_dataset(name, subset,
split=...)`` call; a single local file (``.jsonl``, ``.json`` array or document, ``.parquet``,
``.csv``) goes through the matching packaged builder. Each format then has one small function
that turns a row into ``{instruction, input, output}`` (plus ``difficulty`` where the source
grades it and ``source`` so the training log can name it), or says why the row is skipped.
Every row also carries ``evaluation_type``, the scorer ``locollm eval`` and ``locollm score``
use on it when the row lands in a benchmark (a number for GSM8K, the option letter for
AQuA-RAT, math equivalence for MATH, the passage's words for SQuAD, ROUGE-L for free text).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ..evaluate.extract import last_boxed
from .jsonl import write_jsonl

MATH_INSTRUCTION = ("Solve the following arithmetic word problem. Show your reasoning step by "
                    "step, then give the final answer.")
COMPETITION_INSTRUCTION = ("Solve the following math problem. Show your reasoning step by "
                           "step, then give the final answer.")
CHOICE_INSTRUCTION = ("Solve the following multiple-choice math problem. Show your reasoning "
                      "step by step, then give the letter of the correct option.")
SQUAD_INSTRUCTION = ("Answer the question using the passage. Reply with the exact words of the "
                     "passage that answer it.")
LOCAL_SUFFIXES = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}

Row = dict | str  # a converted example, or the reason a source row was skipped


@dataclass(frozen=True)
class Format:
    """A public dataset's layout: its hub id, required columns and row converter."""

    name: str
    hub: str
    columns: tuple[str, ...]
    convert: Callable[[dict], Iterator[Row]]
    subset: str | None = None
    # the scorer for its rows (locollm.evaluate.scorers.EVALUATION_TYPES)
    evaluation_type: str = "rouge"


@dataclass
class ConvertResult:
    """What a conversion wrote and what it skipped, by reason."""

    output: Path
    written: int
    skipped: Counter = field(default_factory=Counter)
    rows_read: int = 0


def _final(text: str) -> str:
    return f"\n\nThe answer is {text.strip().rstrip('.')}."


def _gsm8k(row: dict) -> Iterator[Row]:
    """``answer`` is worked lines with ``<<48/2=24>>`` calculator notes, then ``#### 72``."""
    reasoning, sep, final = str(row["answer"] or "").rpartition("####")
    if not sep or not final.strip():
        yield "no '#### answer' line"
        return
    reasoning = re.sub(r"<<[^>]*>>", "", reasoning).strip()
    yield {"instruction": MATH_INSTRUCTION, "input": str(row["question"]).strip(),
           "output": reasoning + _final(final.replace(",", ""))}


def _math(row: dict) -> Iterator[Row]:
    """Hendrycks MATH: ``problem``, ``solution`` with ``\\boxed{}``, ``level``, ``type``."""
    solution = str(row["solution"] or "").strip()
    answer = last_boxed(solution)
    if not answer:
        yield "no \\boxed{} answer in the solution"
        return
    out = {"instruction": COMPETITION_INSTRUCTION, "input": str(row["problem"]).strip(),
           "output": solution + _final(answer)}
    level = re.search(r"\d", str(row.get("level") or ""))
    if level:
        out["difficulty"] = {1: "easy", 2: "easy", 3: "medium"}.get(int(level.group()), "hard")
    if row.get("type"):
        out["category"] = str(row["type"])
    yield out


def _aqua_rat(row: dict) -> Iterator[Row]:
    """AQuA-RAT: ``question``, ``options`` like ``A)21``, ``rationale``, ``correct`` letter."""
    correct = str(row["correct"] or "").strip().upper()
    options = [re.sub(r"^([A-E])\)\s*", r"\1) ", str(o).strip()) for o in row["options"] or []]
    if not correct or not options:
        yield "no options or no correct letter"
        return
    yield {"instruction": CHOICE_INSTRUCTION,
           "input": str(row["question"]).strip() + "\nOptions:\n" + "\n".join(options),
           "output": str(row["rationale"] or "").strip() + _final(correct)}


def _alpaca(row: dict) -> Iterator[Row]:
    """Alpaca and CodeAlpaca already use instruction / input / output."""
    yield {"instruction": str(row["instruction"] or "").strip(),
           "input": str(row.get("input") or "").strip(),
           "output": str(row["output"] or "").strip()}


def _squad_one(context: str, question: str, answers: list[str]) -> Row:
    answers = [a for a in answers if a and a.strip()]
    if not answers:
        return "no answer (a SQuAD 2.0 unanswerable question)"
    return {"instruction": SQUAD_INSTRUCTION,
            "input": f"Passage: {context.strip()}\n\nQuestion: {question.strip()}",
            "output": answers[0].strip()}


def _squad(row: dict) -> Iterator[Row]:
    """SQuAD flat (hub: context, question, answers.text) or nested (the original JSON)."""
    if "paragraphs" in row:
        for paragraph in row["paragraphs"] or []:
            for qa in paragraph.get("qas") or []:
                texts = [a.get("text", "") for a in qa.get("answers") or []]
                yield _squad_one(paragraph["context"], qa["question"], texts)
        return
    answers = row["answers"] or {}
    yield _squad_one(row["context"], row["question"], list(answers.get("text") or []))


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("gsm8k", "openai/gsm8k", ("question", "answer"), _gsm8k, "main", "numeric"),
    Format("math", "EleutherAI/hendrycks_math", ("problem", "solution"), _math, "algebra",
           "math"),
    Format("aqua_rat", "deepmind/aqua_rat", ("question", "options", "rationale", "correct"),
           _aqua_rat, "raw", "multiple_choice"),
    Format("alpaca", "tatsu-lab/alpaca", ("instruction", "output"), _alpaca),
    # CodeAlpaca has no tests to run, so its code is compared as text
    Format("codealpaca", "sahil2801/CodeAlpaca-20k", ("instruction", "output"), _alpaca),
    Format("squad", "rajpurkar/squad", ("question", "context", "answers"), _squad,
           evaluation_type="contains"),
)}


def _json_field(path: Path) -> str | None:
    """For a JSON document (not JSONL) that wraps its rows, the key holding them (SQuAD: data)."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16).lstrip()
    if not head.startswith(b"{"):
        return None
    try:
        json.loads(head.split(b"\n", 1)[0])
        return None  # the first line is a whole object: JSONL
    except ValueError:
        pass
    try:
        doc = json.loads(path.read_bytes())
    except ValueError as exc:
        raise DataError(f"not valid JSON ({exc})", file=path) from exc
    lists = [k for k, v in doc.items() if isinstance(v, list)] if isinstance(doc, dict) else []
    return lists[0] if lists else None


def is_local(source: str) -> bool:
    """Whether SOURCE names local files rather than a hub dataset."""
    path = Path(source).expanduser()
    return path.exists() or path.suffix in LOCAL_SUFFIXES or source.startswith((".", "/", "~"))


def load_rows(source: str, fmt: Format, split: str = "train", subset: str | None = None):
    """Load SOURCE (hub name, hub-layout folder or single file) as a ``datasets.Dataset``."""
    import datasets

    from ..paths import home

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    cache = str(home() / "datasets")
    path = Path(source).expanduser()
    if is_local(source) and not path.exists():
        raise DataError("file not found", file=path, fix="check the path, or give a hub name "
                        f"such as {fmt.hub}")
    try:
        if path.is_file():
            builder = LOCAL_SUFFIXES.get(path.suffix.lower())
            if builder is None:
                raise DataError(f"cannot read {path.suffix or 'extensionless'} files", file=path,
                                fix="use .jsonl, .json, .parquet or .csv")
            wrapped = _json_field(path) if path.suffix.lower() == ".json" else None
            extra = {"field": wrapped} if wrapped else {}
            return datasets.load_dataset(builder, data_files=str(path), split="train",
                                         cache_dir=cache, **extra)
        if path.is_dir():
            name = str(path)
        else:
            _require_hub(source)
            name = source
            if subset is None and source in (fmt.hub, fmt.hub.split("/")[-1]):
                subset = fmt.subset  # the canonical repo's default config
        # the hub and a local folder in the hub's layout take the same call
        return datasets.load_dataset(name, subset, split=split, cache_dir=cache)
    except DataError:
        raise
    except Exception as exc:  # datasets raises many types for one user mistake; show its words
        raise DataError(f"datasets could not load it: {exc}", file=source,
                        fix="check the name, --subset and --split") from exc


def _require_hub(source: str) -> None:
    from ..models import hub_online

    if not hub_online():
        raise DataError(f"{source!r} is a hub dataset, and the Hugging Face hub cannot be "
                        "reached", fix="connect to the network, or pass local files in the "
                        "dataset's own format (.jsonl, .json, .parquet, .csv or a folder)")


def convert(fmt: str, source: str, output: str | Path, *, split: str = "train",
            subset: str | None = None, limit: int | None = None) -> ConvertResult:
    """Convert a public dataset into locollm JSONL, written atomically to ``output``.

    Args:
        fmt: one of :data:`FORMATS` (gsm8k, math, aqua_rat, alpaca, codealpaca, squad).
        source: a hub name, a folder in the hub's layout, or one local file.
        output: the JSONL to write.
        split: which split of a hub dataset or folder (a single file is all one split).
        subset: the hub config (gsm8k: main; MATH: algebra, geometry, ...).
        limit: convert only the first N source rows.

    Raises:
        DataError: unknown format, unreadable source, missing columns, nothing converted.
    """
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")
    spec = FORMATS[fmt]
    ds = load_rows(source, spec, split, subset)
    columns = set(ds.column_names)
    missing = [c for c in spec.columns if c not in columns]
    if missing and not (fmt == "squad" and "paragraphs" in columns):
        raise DataError(f"does not look like {fmt}: no column(s) {', '.join(missing)} "
                        f"(it has {', '.join(sorted(columns)) or 'none'})", file=source,
                        fix="pick the --from format that matches these columns")
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    rows, skipped = [], Counter()
    for row in ds:
        for out in spec.convert(row):
            if isinstance(out, str):
                skipped[out] += 1
            elif not out["instruction"] or not out["output"].strip():
                skipped["empty instruction or output"] += 1
            else:
                rows.append({**out, "evaluation_type": spec.evaluation_type, "source": source})
    if not rows:
        raise DataError(f"no row could be converted ({dict(skipped)})", file=source)
    path = write_jsonl(output, rows)
    return ConvertResult(path, len(rows), skipped, len(ds))
