"""The arithmetic of worked steps: every "a op b = c" a solution writes is recomputed.

A verified final answer does not make the working right, and math-verify compares final answers only.
Measured on the 0.5B teacher (30 GSM8K problems x 4 attempts), 25 of 120 attempts wrote a wrong equation
("3.79 + 4.5 + 3.95 + 3.09 + 4.67 = 22.31"); GSM8K's own solutions hold 27 ("192*100=$1920"). A sample
whose working says 336 - 16 = 280 teaches that, whatever its last line. So the reasoning generator and
filter.math_answer recompute each written equation whose left side is plain arithmetic (numbers,
+ - × ÷ / ^, parentheses, LaTeX \\times, \\div, \\frac) and whose right side is a number, with the same safe
evaluator as the `calculate` tool. A wrong set-up with right arithmetic (2 × 40 where the problem says
the two cost 40 together) is not caught here: checking that every operand comes from the problem or an
earlier step flagged 6% of GSM8K's reference solutions (days per month, coin values: world knowledge),
too many to drop on.

Deliberately conservative, because a false alarm throws away a right solution: an equation is checked
only when both sides are pure arithmetic once currency signs, LaTeX wrappers and thousands separators are
gone ("5 apples + 3 apples = 8" is not read), "≈" is never read, and a stated value counts as right when
it is the exact value rounded to the digits it shows (10 / 3 = 3.33).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from pipelines.tools.calculator import CalculatorError, evaluate

_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_TEXT = re.compile(r"\\(?:text|mathrm|textbf|mbox)\s*\{[^{}]*\}")
_REWRITES = (
    ("\\times", "*"), ("\\cdot", "*"), ("×", "*"), ("⋅", "*"), ("·", "*"), ("\\div", "/"), ("÷", "/"),
    ("−", "-"), ("–", "-"), ("\\left", ""), ("\\right", ""), ("\\$", ""), ("$", ""), ("\\(", " "),
    ("\\)", " "), ("\\[", " "), ("\\]", " "), ("\\,", ""), ("\\!", ""), ("\\ ", " "), ("**", "^"),
)
# "1,250" is one number; "5, 6" is two.
_DIGIT_GROUPS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# "5 x 10", "5x(1/2)", "(1/2) x 2": a multiplication sign (not across lines); " x " after a word too, so
# "60 students x 2/3" is not read as 2/3.
_TIMES_X = re.compile(r"(?<=[\d)])[ \t]*[xX][ \t]*(?=[\d(.])|(?<=\s)[xX](?=[ \t])")
# "1 and 1/3" is one mixed number.
_MIXED = re.compile(r"(\d+)[ \t]+and[ \t]+(\d+)[ \t]*/[ \t]*(\d+)")
# GSM8K's calculator annotations, "<<5*10=50>>", are not the writer's working.
_ANNOTATION = re.compile(r"<<[^<>]*>>")
_ARITH = r"[\d\s.+\-*/^()]"
_TAIL = re.compile(rf"{_ARITH}+$")
_HEAD = re.compile(rf"^{_ARITH}+")
_NUMBER = re.compile(r"^\s*-?\d+(?:\.\d+)?\s*$")
_OPERATOR_BETWEEN = re.compile(r"\d\s*\)?\s*[+\-*/^]\s*\(?\s*-?\d")
# A list marker ("- ", "2. ", "3) ") is not a minus sign or a number of the working.
_MARKER = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
_OVER_FRACTION = re.compile(r"/\s*(\d+)\s*/\s*(\d+)")
_LEADING_NUMBER = re.compile(r"^\s*-?\d+(?:\.\d+)?")


def normalise(text: str) -> str:
    """Working as plain arithmetic: LaTeX, currency and thousands separators written out of the way."""
    text = _ANNOTATION.sub("", text)
    text = _TEXT.sub(" ", text)
    for _ in range(3):  # nested fractions, innermost first
        text = _FRAC.sub(r"((\1)/(\2))", text)
    for old, new in _REWRITES:
        text = text.replace(old, new)
    text = text.replace("{", "(").replace("}", ")")
    text = _DIGIT_GROUPS.sub("", text)
    text = _MIXED.sub(r"(\1+\2/\3)", text)
    return _TIMES_X.sub(" * ", text)


def _balanced(expr: str) -> str:
    """Trim a parenthesis the text around the equation opened before it or closed after it; what stays
    unbalanced does not evaluate, so it is not read."""
    expr = expr.strip()
    while expr.count("(") > expr.count(")") and expr.startswith("("):
        expr = expr[1:].strip()
    while expr.count(")") > expr.count("(") and expr.endswith(")"):
        expr = expr[:-1].strip()
    return expr


def _shown_precision(number: str) -> float:
    digits = len(number.split(".", 1)[1]) if "." in number else 0
    return 0.5 * 10 ** -digits


def equations(text: str) -> Iterator[tuple[str, str]]:
    """(arithmetic, stated) for each written equation both of whose sides read as arithmetic."""
    for line in normalise(text).splitlines():
        parts = _MARKER.sub("", line).split("=")
        for left, right in zip(parts, parts[1:]):
            lhs, rhs = _TAIL.search(left), _HEAD.search(right)
            if lhs is None or rhs is None:
                continue
            expr, stated = _balanced(lhs.group()), _balanced(rhs.group()).rstrip(".").strip()
            touching = "" if lhs.group()[:1].isspace() else left[:lhs.start()][-1:]
            after = right[rhs.end():].lstrip()[:1]
            if after.isalpha() and rhs.group()[-1:].isspace():
                after = ""  # "= 8 apples" states 8; "= 3S" does not
            # Algebra, clock times and units are not arithmetic: "M + 4 + 2 = 8", "5A/5 = 20", "6:00+48 =",
            # "1/5 = 20%", "= 3S + 1".
            if (_OPERATOR_BETWEEN.search(expr) and re.match(r"[\d.(]|-\d", expr) and stated
                    and not (touching.isalnum() or touching in (")", ":"))
                    and not (after.isalpha() or after in ("%", "/", "("))):
                yield expr, stated


def slips(reasoning: str) -> list[dict[str, object]]:
    """Each written equation whose stated value is not its left side's value: {"step", "stated", "value"}."""
    found: list[dict[str, object]] = []
    for expr, stated in equations(reasoning):
        value = _value(expr)
        if value is None:
            continue
        if _NUMBER.match(stated):
            # "25 / 1/3 = 75": a person means 25 divided by a third; read it both ways.
            grouped = _value(_OVER_FRACTION.sub(r"/(\1/\2)", expr)) if _OVER_FRACTION.search(expr) else None
            if not _equal(value, stated) and (grouped is None or not _equal(grouped, stated)):
                found.append({"step": f"{expr} = {stated}", "stated": float(stated), "value": value})
            continue
        # A running chain, "3 * 40 = 120 + 50 = 170": the stated value is the number that opens the right
        # side; an identity of two expressions ("12 - 2 = 2 * 5") is right too.
        first, other = _LEADING_NUMBER.match(stated), _value(stated)
        if first is None or other is None or _equal(value, first.group().strip()) or math.isclose(
                value, other, rel_tol=1e-9, abs_tol=1e-9):
            continue
        found.append({"step": f"{expr} = {stated}", "stated": float(first.group()), "value": value})
    return found


def _value(expr: str) -> float | None:
    try:
        return evaluate(expr)  # it reads ^ as a power, as people write it
    except CalculatorError:
        return None


def _equal(value: float, stated: str) -> bool:
    """The stated number is the value rounded to the digits it shows, or a whole number the value was
    rounded down or up to ("100 / 6 = 16" full bags, "= 17" bags needed)."""
    claimed = float(stated)
    if math.isclose(value, claimed, abs_tol=_shown_precision(stated) + 1e-9 * max(abs(value), 1.0)):
        return True
    return "." not in stated and math.floor(value) <= claimed <= math.ceil(value)
