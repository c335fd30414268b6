"""The LLM judge: a rubric, several runs, their mean and spread, through any OpenAI-compatible
endpoint (``locollm serve``, vLLM, Ollama, llama.cpp's server, OpenAI itself).

Each judge item is graded ``runs`` times (3 by default, at a temperature above zero so the runs
can disagree): the judge reads the question, the reference if there is one, the rubric (the
item's ``rubric`` or a default) and the answer, and ends its reply with ``SCORE: N`` for N from
0 to 10. The item's value is the mean of the runs over 10, its spread their standard
deviation, and the answer counts as right when the mean reaches ``pass_mark``.
"""

from __future__ import annotations

import os
import re
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError, LocollmError
from .benchmark import BenchItem

if TYPE_CHECKING:
    from .scorers import Score, ScoringConfig

DEFAULT_RUBRIC = ("10: correct and complete, agreeing with the reference answer when one is "
                  "given. 5: partly correct, or correct but incomplete. 0: wrong, off-topic or "
                  "empty.")
SYSTEM = ("You grade answers strictly and consistently. Read the rubric, then the answer. "
          "Reply with one short line of justification, then a last line 'SCORE: N' where N is "
          "an integer from 0 to 10.")
_SCORE = re.compile(r"score\s*[:=]\s*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*/\s*10\b", re.IGNORECASE)


@dataclass
class JudgeConfig:
    """Where the judge model is and how it grades."""

    # OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1
    base_url: str
    # model name the endpoint serves
    model: str
    # API key; None reads LOCOLLM_JUDGE_KEY, then OPENAI_API_KEY (local servers ignore it)
    api_key: str | None = None
    # gradings per item: their mean is the value, their spread how sure the judge is
    runs: int = 3
    # sampling temperature of the judge (above zero, or the runs cannot differ)
    temperature: float = 0.7
    # mean score (0..1) from which the answer counts as right
    pass_mark: float = 0.7
    # tokens the judge may write per grading
    max_tokens: int = 256
    # seconds to wait for one grading
    timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise ConfigError(f"judge runs must be at least 1, got {self.runs}")
        if not 0 <= self.pass_mark <= 1:
            raise ConfigError(f"judge pass mark must be from 0 to 1, got {self.pass_mark}")


def parse_score(text: str) -> float | None:
    """The last ``SCORE: N`` (or ``N/10``) of a judge's reply, clamped to 0..10; None if absent."""
    found = _SCORE.findall(text or "")
    if not found:
        return None
    value = float(next(v for v in found[-1] if v))
    return min(max(value, 0.0), 10.0)


def judge_prompt(reply: str, item: BenchItem) -> str:
    """The user message the judge grades."""
    parts = [f"Question:\n{item.question or '(none given)'}"]
    if item.reference.strip():
        parts.append(f"Reference answer:\n{item.reference}")
    parts.append(f"Rubric:\n{item.rubric or DEFAULT_RUBRIC}")
    parts.append(f"Answer to grade:\n{reply}")
    return "\n\n".join(parts)


def _client(config: JudgeConfig):
    from openai import OpenAI

    key = config.api_key or os.environ.get("LOCOLLM_JUDGE_KEY") or \
        os.environ.get("OPENAI_API_KEY") or "not-needed"
    return OpenAI(base_url=config.base_url, api_key=key, timeout=config.timeout_s,
                  max_retries=1)


def grade(reply: str, item: BenchItem, config: JudgeConfig, client=None) -> list[float | None]:
    """Each run's score (0..10, None where the judge gave none)."""
    import openai

    client = client or _client(config)
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": judge_prompt(reply, item)}]
    scores = []
    for run in range(config.runs):
        try:
            out = client.chat.completions.create(
                model=config.model, messages=messages, temperature=config.temperature,
                max_tokens=config.max_tokens, seed=run)
        except openai.APIConnectionError as exc:
            raise LocollmError(f"the judge at {config.base_url} cannot be reached ({exc})",
                               fix="start the judge's server, or check --judge-url") from exc
        except openai.APIStatusError as exc:
            raise LocollmError(f"the judge at {config.base_url} refused the request "
                               f"(HTTP {exc.status_code}: {exc.message})",
                               fix="check --judge-model and the API key "
                                   "(LOCOLLM_JUDGE_KEY)") from exc
        content = out.choices[0].message.content if out.choices else ""
        scores.append(parse_score(content or ""))
    return scores


def judge_score(reply: str, item: BenchItem, scoring: ScoringConfig) -> Score:
    """Grade ``reply`` ``runs`` times; the Score's value is the mean over 10, ``runs`` each
    run's score, and ``detail`` the spread."""
    from .scorers import Score

    config = scoring.judge
    if config is None:
        raise ConfigError(f"benchmark line {item.line} needs an LLM judge",
                          fix="pass --judge-url URL --judge-model NAME (any OpenAI-compatible "
                              "endpoint)")
    client = scoring.state.get("judge_client") or scoring.state.setdefault(
        "judge_client", _client(config))
    raw = grade(reply, item, config, client)
    given = [s / 10 for s in raw if s is not None]
    if not given:
        return Score("judge", False, 0.0, None, f"mean >= {config.pass_mark:.2f}",
                     f"the judge gave no score in {len(raw)} run(s)", [])
    mean = statistics.fmean(given)
    spread = statistics.pstdev(given) if len(given) > 1 else 0.0
    missing = len(raw) - len(given)
    detail = f"mean {mean:.2f} ± {spread:.2f} over {len(given)} run(s)" + (
        f", {missing} without a score" if missing else "")
    return Score("judge", mean >= config.pass_mark, mean, f"{mean:.2f}",
                 f">= {config.pass_mark:.2f}", detail, given)
