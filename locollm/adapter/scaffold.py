"""``locollm adapters new DOMAIN``: the guide's adapter folder, ready for Phase 1.

Writes ``adapters/DOMAIN/`` with ``training/TRAINING_LOG.md`` (baseline table, the guide's
failure-analysis table and its failure type -> training strategy advice, data sources,
checklist, iterations), ``training/train_config.yaml`` (every TrainConfig field with its
comment and default) and ``eval/README.md``. The folder is built aside and renamed into place,
and an existing folder is never touched.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import yaml

from ..errors import LocollmError

SLUG = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
MAX_SLUG = 40

LOG_TEMPLATE = """\
# {domain} adapter: training log

Team: _names, course_  ·  Started: _date_  ·  Base model: {base_model}

## Phase 1: baseline testing

Run at least 20 queries from the domain through the bare base model, each logged as one JSON
line (query, response, base model and its sha256, settings, latency, tokens):

    loco query "..." --no-adapter --save-log adapters/{domain}/training/baseline_tests.jsonl

| # | Query | Base model response (short) | Right? | Failure type | What a good answer looks like |
|---|---|---|---|---|---|
| 1 | | | | | |

Verdict: is the domain worth an adapter? (If the base already handles it, pick another.)

## Failure analysis

Count the failures above by type; the type decides the training data strategy.

| Failure type | Count | Training strategy |
|---|---|---|
| Wrong answer format | | Include many examples with correct formatting |
| Missing reasoning steps | | Use chain-of-thought examples with explicit steps |
| Domain vocabulary errors | | Include examples that use domain-specific terms correctly |
| Incorrect application of rules | | Create examples covering each rule/formula explicitly |
| Inconsistent quality | | More diverse training examples, especially edge cases |

## Data sources

Name every file the data comes from (`locollm data check` looks for each file name here), with
where it came from, its license, and how it was converted, generated or filtered:

- _file_: _origin, license, conversion / filtering_

Synthetic generation runs (`locollm data synth`) append their rejection rates below.

## Data quality checklist

`locollm data check adapters/{domain}/training/<training file> --benchmark
adapters/{domain}/eval/<benchmark file>` checks these; paste its summary line here.

- [ ] At least 500 training examples
- [ ] No duplicate or near-duplicate examples
- [ ] Outputs are consistently high quality (would you be happy receiving this response?)
- [ ] Difficulty is varied (not all easy, not all hard)
- [ ] Edge cases are represented
- [ ] Format is consistent (same JSONL schema throughout)
- [ ] Benchmark set (50+ examples) is completely separate from training set
- [ ] All sources are documented in TRAINING_LOG.md

## Iterations

| # | Date | Change | Benchmark (base -> adapter) | OOD | Notes |
|---|---|---|---|---|---|
| 1 | | first run | | | |
"""

EVAL_README = """\
# {domain}: evaluation data

- `benchmark.jsonl`: 50+ held-out test cases in the training format, never seen in training
  (`locollm data split` makes a contamination-free split).
- an out-of-domain set (general questions the adapter must not damage), scored into
  `ood_results.json`.
- `results.json`, `base_results.json`: written by `locollm eval --adapter {domain}`.
"""


def check_slug(domain: str) -> str:
    """Return ``domain`` if it is a lowercase slug (``legal-qa``), else raise with a fix."""
    if not SLUG.match(domain) or len(domain) > MAX_SLUG:
        suggestion = re.sub(r"[^a-z0-9]+", "-", domain.lower()).strip("-")
        suggestion = re.sub(r"^[0-9-]+", "", suggestion)[:MAX_SLUG] or "my-domain"
        raise LocollmError(f"{domain!r} is not a lowercase slug",
                           fix=f"use lowercase letters, digits and single hyphens, starting "
                               f"with a letter, at most {MAX_SLUG} characters, e.g. "
                               f"{suggestion!r}")
    return domain


def _field_comments(cls: type) -> dict[str, list[str]]:
    """The comment lines written directly above each field of a dataclass's source."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    comments: dict[str, list[str]] = {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above, i = [], node.lineno - 2
            while i >= 0 and lines[i].strip().startswith("#"):
                above.insert(0, lines[i].strip())
                i -= 1
            comments[node.target.id] = above
    return comments


def config_yaml(domain: str, root: Path) -> str:
    """The default TrainConfig as commented YAML, pointed at this adapter's folder."""
    from ..config import TrainConfig

    cfg = TrainConfig(dataset=str(root / domain / "training" / "dataset.jsonl"),
                      output=str(root / domain))
    comments = _field_comments(TrainConfig)
    out = [f"# Training config for the {domain} adapter: the defaults of locollm's "
           "TrainConfig.", f"# Use it: locollm train --config {root / domain}/training/"
           "train_config.yaml", "# Training overwrites this file with the exact config "
           "of the last run.", ""]
    for key, value in cfg.to_dict().items():
        out += comments.get(key, [])
        out.append(yaml.safe_dump({key: value}, sort_keys=False).rstrip())
    return "\n".join(out) + "\n"


def new_adapter(domain: str, root: str | Path = "adapters") -> Path:
    """Create the guide's folder for a new adapter and return it.

    Raises:
        LocollmError: ``domain`` is not a lowercase slug, or the folder already exists.
    """
    from ..paths import atomic_dir

    check_slug(domain)
    root = Path(root)
    dest = root / domain
    if dest.exists():
        raise LocollmError("already exists; nothing was changed", file=dest,
                           fix="pick another name, or edit the existing folder")
    base_model = _default_base()
    with atomic_dir(dest) as tmp:
        (tmp / "training").mkdir()
        (tmp / "eval").mkdir()
        (tmp / "training" / "TRAINING_LOG.md").write_text(
            LOG_TEMPLATE.format(domain=domain, base_model=base_model), encoding="utf-8")
        (tmp / "training" / "train_config.yaml").write_text(config_yaml(domain, root),
                                                            encoding="utf-8")
        (tmp / "eval" / "README.md").write_text(EVAL_README.format(domain=domain),
                                                encoding="utf-8")
    return dest


def _default_base() -> str:
    from ..config import TrainConfig

    return TrainConfig().base_model
