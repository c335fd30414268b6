"""Reading the final answer out of a reply or a reference: numbers, option letters, ``\\boxed{}``,
the phrase after "the answer is", code blocks.

Each reader returns what it found or None, so a scorer can say *why* an item failed ("no number
in the reply") instead of comparing against an empty string. Numbers are read into exact
fractions, so "1,250.00", "$1250" and "1250" are one value and "1/2" equals "0.5".
"""

from __future__ import annotations

import re
from fractions import Fraction

# "The answer is", "Answer:", "final answer is", GSM8K's "####"; the last one in a text counts.
_MARKER = re.compile(r"(?:\banswer\s*(?:is|:|=)|\bans\s*:|####)\s*:?\s*", re.IGNORECASE)
# one number: sign, currency, thousands separators, decimals, a fraction or a mixed number
_NUM = re.compile(
    r"(?<![\w.])(?P<sign>[-−+])?(?:[$€£¥]\s?)?"
    r"(?:(?P<whole>\d+)\s+(?P<mn>\d+)/(?P<md>\d+)"  # mixed: 1 1/2
    r"|(?P<num>\d+)\s*/\s*(?P<den>\d+)"  # fraction: 3/4
    r"|(?P<dec>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d*\.\d+|\d+)(?:[eE](?P<exp>[-+]?\d+))?)"
    r"(?P<pct>\s?%)?")
_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen")
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_WORDS = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_WORD_NUM = re.compile(r"\b(" + "|".join(sorted(_WORDS, key=len, reverse=True)) +
                       r")(?:[- ](one|two|three|four|five|six|seven|eight|nine))?\b",
                       re.IGNORECASE)


def after_marker(text: str) -> str | None:
    """The rest of the line after the last "the answer is" / "Answer:" / "####", or None."""
    matches = list(_MARKER.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end():]
    return rest.split("\n", 1)[0].strip()


def last_boxed(text: str) -> str | None:
    r"""The content of the last ``\boxed{...}`` or ``\fbox{...}`` (braces may nest), or None."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start == -1:
        return None
    i = text.index("{", start) + 1
    depth, begin = 1, i
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[begin:i - 1].strip() if depth == 0 else None


def _value(m: re.Match) -> tuple[Fraction, bool]:
    sign = -1 if m["sign"] in ("-", "−") else 1
    if m["whole"]:
        value = int(m["whole"]) + Fraction(int(m["mn"]), int(m["md"]) or 1)
    elif m["num"]:
        value = Fraction(int(m["num"]), int(m["den"]) or 1) if int(m["den"]) else Fraction(0)
    else:
        value = Fraction(m["dec"].replace(",", ""))
        if m["exp"]:
            value *= Fraction(10) ** int(m["exp"])
    return sign * value, bool(m["pct"])


def latex_plain(text: str) -> str:
    r"""LaTeX number notation as plain text: ``\frac{1}{2}`` -> 1/2, ``\$`` -> $, ``\%`` -> %,
    ``1{,}000`` -> 1,000, ``\text{cm}`` -> cm."""
    text = re.sub(r"\\[dt]?frac\s*\{\s*([^{}]+?)\s*\}\s*\{\s*([^{}]+?)\s*\}", r"(\1)/(\2)", text)
    text = re.sub(r"\\[dt]?frac\s*(\d)(\d)", r"\1/\2", text)
    text = re.sub(r"\((-?\d+)\)/\((\d+)\)", r"\1/\2", text)  # (1)/(2) -> 1/2
    text = re.sub(r"\\(?:text|mathrm|textbf|mbox)\s*\{([^{}]*)\}", r"\1", text)
    return (text.replace("{,}", ",").replace("\\$", "$").replace("\\%", "%")
            .replace("\\!", "").replace("\\,", ""))


def numbers(text: str) -> list[tuple[Fraction, bool]]:
    """Every number in ``text`` in order, as (exact value, written with a percent sign)."""
    found = []
    for m in _NUM.finditer(latex_plain(text)):
        if m["num"] and int(m["den"]) == 0:
            continue  # "1/0" is not a number
        found.append(_value(m))
    return found


def word_number(text: str) -> Fraction | None:
    """The first number written in words ("seven", "twenty-four"), or None."""
    m = _WORD_NUM.search(text)
    if not m:
        return None
    value = _WORDS[m[1].lower()]
    if m[2] and value >= 20 and value % 10 == 0:
        value += _WORDS[m[2].lower()]
    return Fraction(value)


def final_number(text: str) -> tuple[Fraction, bool] | None:
    """The final numeric answer of a reply.

    The number after the last "the answer is" (after the last "=" on that line, so "the answer
    is 2 + 3 = 5" reads 5), else the content of the last ``\\boxed{}``, else the last number of
    the text, else a number written in words.
    """
    phrase = after_marker(text)
    if phrase is not None:
        tail = phrase.rsplit("=", 1)[-1]
        found = numbers(tail)
        if found:
            return found[0]
    boxed = last_boxed(text)
    if boxed is not None:
        found = numbers(boxed)
        if found:
            return found[-1]
    found = numbers(text)
    if found:
        return found[-1]
    word = word_number(phrase if phrase is not None else text)
    return (word, False) if word is not None else None


def format_number(value: Fraction) -> str:
    """A number the way a person writes it: 12, -3.5, 1/3."""
    if value.denominator == 1:
        return str(value.numerator)
    as_float = float(value)
    if Fraction(repr(as_float)) == value:
        return repr(as_float)
    return f"{value.numerator}/{value.denominator}"


def code_block(text: str) -> str:
    """The program in a reply: the first fenced block (```python ... ```), else the whole text."""
    m = re.search(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", text, re.DOTALL)
    return (m.group(1) if m else text).strip("\n")


def options(text: str) -> dict[str, str]:
    """The options of a multiple-choice question, by letter: lines like ``A) 21``, ``(B) 3``,
    ``C. ten``, ``D: 7``."""
    found = {}
    for m in re.finditer(r"^\s*\(?([A-J])\s*[).:]\s*(.+?)\s*$", text, re.MULTILINE):
        found.setdefault(m[1], m[2])
    return found


def first_sentence(text: str) -> str:
    """The first non-empty line, cut at its first sentence end (". ", "! ", "? ")."""
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    m = re.search(r"[.!?](?:\s|$)", line)  # "1.5" has no space after its point
    return line[:m.start()] if m else line
