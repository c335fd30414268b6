"""Domain validator for math examples: is every calculation right, and is the answer scorable?

Checks, for each example's output:

* every ``Step k:`` line holds one ``a op b = c`` (op one of + - x * × /), and each is
  recomputed: a wrong result, or a division that does not come out whole, is rejected;
* every operand is a number of the question, a result of an earlier step, the tens or ones
  part of one of those, or a small constant (a times-table number up to 12, or 100): a
  number from nowhere means a copied or invented step;
* the last line is ``The answer is N.`` and N is the result of the last step.

Used by ``locollm data synth --validator adapters/math/training/validate.py:validate`` to reject
generated examples whose arithmetic is wrong, and by the tests on the generated dataset.
"""

from __future__ import annotations

import re

_NUM = r"(-?\d+(?:\.\d+)?)"
_EQUATION = re.compile(rf"{_NUM}\s*([+\-x*×/])\s*{_NUM}\s*=\s*{_NUM}")
_FINAL = re.compile(rf"^The answer is {_NUM}\.$")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "x": lambda a, b: a * b,
        "*": lambda a, b: a * b, "×": lambda a, b: a * b,
        "/": lambda a, b: a / b if b else float("nan")}
_CONSTANTS = {float(k) for k in range(13)} | {100.0}  # times-table quotients


def _parts(n: float) -> set[float]:
    """n and its tens and ones parts (47 -> 47, 40, 7)."""
    if n != int(n) or n < 0:
        return {n}
    return {n, float(int(n) // 10 * 10), float(int(n) % 10)}


def validate(example: dict) -> str | None:
    """None when the example is right, else the reason it is not."""
    output = str(example.get("output", ""))
    question = f"{example.get('instruction', '')} {example.get('input', '')}"
    known = set(_CONSTANTS)
    for n in _NUMBER.findall(question):
        known |= _parts(float(n))
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    if not lines or not _FINAL.match(lines[-1]):
        return "the last line must be 'The answer is N.'"
    results = []
    for line in lines[:-1]:
        equations = _EQUATION.findall(line)
        if line.startswith("Step") and len(equations) != 1:
            return f"a step must hold exactly one 'a op b = c': {line!r}"
        for a, op, b, c in equations:
            expected = _OPS[op](float(a), float(b))
            if abs(expected - float(c)) > 1e-9:
                return f"wrong arithmetic: {a} {op} {b} = {c} (it is {expected:g})"
            if op == "/" and expected != int(expected):
                return f"division that is not whole: {a} / {b}"
            for operand in (float(a), float(b)):
                if operand not in known:
                    return f"{operand:g} in {a} {op} {b} is not from the question or a step"
            known |= _parts(float(c))
            results.append(float(c))
    if not results:
        return "no worked step (no 'a op b = c' line)"
    if float(_FINAL.match(lines[-1]).group(1)) != results[-1]:
        return "the final answer is not the result of the last step"
    return None
