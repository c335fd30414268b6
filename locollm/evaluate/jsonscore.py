"""The ``json`` scorer: a reply's first JSON object against the reference object.

Extraction tasks (a sentence in, a record out) are right when the record is: the same keys with
the same values, whatever the key order, the spacing or the way a number is written. The reply
is read with :meth:`json.JSONDecoder.raw_decode` from its first ``{``, so text before or after
the object (a code fence, "Here is the JSON:") does not matter, but a malformed object fails.

Values are compared after normalising: numbers numerically (``42.5`` == ``42.50``, and a
number written as a string ``"42.5"`` or ``"$42.50"`` counts as that number), strings by
case and whitespace (``"Ana  lopez"`` == ``"Ana Lopez"``), nested objects and lists
recursively (lists in order). A missing key is wrong; an extra key is wrong too, so a reply
cannot pass by listing every guess.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .benchmark import BenchItem

_DECODER = json.JSONDecoder()
_MONEY = re.compile(r"^[-+]?[$€£¥]?\s?\d[\d,]*(\.\d+)?$")


def first_object(text: str) -> dict | None:
    """The first JSON object in ``text`` (None when no ``{`` starts a valid one)."""
    for m in re.finditer(r"\{", text):
        try:
            value, _ = _DECODER.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _MONEY.match(value.strip()):
        return float(re.sub(r"[$€£¥,\s]", "", value))
    return None


def _norm_text(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip().casefold()


def same_value(got: Any, wanted: Any) -> bool:
    """Whether two JSON values are the same after normalising (see the module docstring)."""
    if isinstance(wanted, dict):
        return isinstance(got, dict) and same_object(got, wanted)
    if isinstance(wanted, list):
        return (isinstance(got, list) and len(got) == len(wanted)
                and all(same_value(g, w) for g, w in zip(got, wanted, strict=True)))
    if wanted is None or isinstance(wanted, bool):
        return got is wanted
    w_num = _as_number(wanted)
    if w_num is not None and not isinstance(wanted, str):
        g_num = _as_number(got)
        return g_num is not None and abs(g_num - w_num) <= 1e-9 * max(1.0, abs(w_num))
    if isinstance(wanted, str) and isinstance(got, str):
        return _norm_text(got) == _norm_text(wanted)
    return False


def same_object(got: dict, wanted: dict) -> bool:
    """Same keys (case and spacing aside) and the same value under each."""
    g = {_norm_text(str(k)): v for k, v in got.items()}
    w = {_norm_text(str(k)): v for k, v in wanted.items()}
    return g.keys() == w.keys() and all(same_value(g[k], w[k]) for k in w)


def _diff(got: dict, wanted: dict) -> str:
    g = {_norm_text(str(k)): v for k, v in got.items()}
    w = {_norm_text(str(k)): v for k, v in wanted.items()}
    parts = [f"missing {k}" for k in w if k not in g]
    parts += [f"extra {k}" for k in g if k not in w]
    parts += [f"{k}: {g[k]!r} != {w[k]!r}" for k in w if k in g and not same_value(g[k], w[k])]
    return "; ".join(parts)


def json_score(reply: str, item: BenchItem):
    """Score ``reply`` against each reference object; right when one matches."""
    from .scorers import Score  # scorers imports this module: import at call time

    wanted = [w for w in (first_object(r) for r in item.references) if w is not None]
    if not wanted:
        return Score("json", False, 0.0, None, item.reference, "the reference has no JSON object")
    shown = json.dumps(wanted[0], ensure_ascii=False)
    got = first_object(reply)
    if got is None:
        return Score("json", False, 0.0, None, shown, "no JSON object in the reply")
    ok = any(same_object(got, w) for w in wanted)
    detail = "" if ok else _diff(got, wanted[0])
    return Score("json", ok, float(ok), json.dumps(got, ensure_ascii=False), shown, detail)
