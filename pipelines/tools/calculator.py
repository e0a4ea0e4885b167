"""A safe arithmetic evaluator for the built-in `calculate` tool.

Model-written expressions are untrusted, so `eval` is out: we parse with `ast` and evaluate only number
literals, + - * / // % **, unary signs, a few math functions and the constants pi and e. Exponents and
results are bounded so that "9**9**9" is an error rather than a hung worker.
"""

from __future__ import annotations

import ast
import re
import math
import operator
from typing import Any

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {
    "sqrt": math.sqrt, "abs": abs, "round": round, "min": min, "max": max, "log": math.log,
    "log10": math.log10, "exp": math.exp, "sin": math.sin, "cos": math.cos, "tan": math.tan,
    "floor": math.floor, "ceil": math.ceil,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_MAX_EXPONENT = 100
_MAX_MAGNITUDE = 1e100
# People write these; Python does not (^ is xor in Python).
_REWRITES = {"^": "**", "×": "*", "÷": "/", "−": "-"}
# "1,250.50" is a number to a person, a tuple to Python: drop commas that group digits in threes.
_DIGIT_GROUPS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


class CalculatorError(ValueError):
    """The expression is not plain arithmetic, or has no finite value."""


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression; integral results come back as int, others rounded to 10
    significant digits so that 0.1 + 0.2 reads 0.3 in the tool result."""
    text = expression.strip()
    for old, new in _REWRITES.items():
        text = text.replace(old, new)
    text = _DIGIT_GROUPS.sub("", text)
    if not text:
        raise CalculatorError("empty expression")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalculatorError(f"not an arithmetic expression: {expression!r}") from None
    try:
        value = _eval(tree.body)
    except (ZeroDivisionError, OverflowError, ValueError, TypeError) as exc:
        if isinstance(exc, CalculatorError):
            raise
        raise CalculatorError(f"cannot evaluate {expression!r}: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CalculatorError(f"{expression!r} has no finite numeric value")
    if abs(value) > _MAX_MAGNITUDE:
        raise CalculatorError(f"result of {expression!r} is too large")
    if isinstance(value, int) and abs(value) >= 2**63:
        # Exact, but no JSON reader outside Python keeps it (orjson refuses it): a float, as a person reads it.
        value = float(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return float(f"{value:.10g}") if isinstance(value, float) else value


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise CalculatorError(f"exponent {right} is too large (at most {_MAX_EXPONENT})")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if node.keywords:
            raise CalculatorError(f"{node.func.id}() takes no keyword arguments")
        return _FUNCTIONS[node.func.id](*[_eval(a) for a in node.args])
    raise CalculatorError(f"unsupported in arithmetic: {ast.unparse(node)!r}")
