"""Domain validator for math examples: is every calculation right, and is the answer scorable?

Used by ``locollm data synth --validator adapters/math/training/validate.py:validate`` to reject
generated examples whose arithmetic is wrong, and by the tests on the generated dataset.
"""

from __future__ import annotations

import re

_NUM = r"(-?\d+(?:\.\d+)?)"
_EQUATION = re.compile(rf"{_NUM}\s*([+\-x*×/])\s*{_NUM}\s*=\s*{_NUM}")
_FINAL = re.compile(rf"^The answer is {_NUM}\.$")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "x": lambda a, b: a * b,
        "*": lambda a, b: a * b, "×": lambda a, b: a * b,
        "/": lambda a, b: a / b if b else float("nan")}


def validate(example: dict) -> str | None:
    """None when the example is right, else the reason it is not."""
    output = str(example.get("output", ""))
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    if not lines or not _FINAL.match(lines[-1]):
        return "the last line must be 'The answer is N.'"
    results = []
    for a, op, b, c in _EQUATION.findall(output):
        expected = _OPS[op](float(a), float(b))
        if abs(expected - float(c)) > 1e-9:
            return f"wrong arithmetic: {a} {op} {b} = {c} (it is {expected:g})"
        results.append(float(c))
    if not results:
        return "no worked step (no 'a op b = c' line)"
    if float(_FINAL.match(lines[-1]).group(1)) != results[-1]:
        return "the final answer is not the result of the last step"
    return None
