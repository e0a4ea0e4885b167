"""Is a model's function call right? BFCL's AST checker, rule for rule, in our own code.

Read from `bfcl_eval/eval_checker/ast_eval/ast_checker.py` (ShishirPatil/gorilla, commit a6da28e) so our
scores mean what BFCL's mean: the ground truth lists, per argument, the acceptable values (`""` among them:
the argument may be left out); a call is right when its name matches exactly (dots included), every
required parameter is given, no parameter is unknown to the schema or to the ground truth, each value has
the schema's type (int -> float is the only coercion, and only at the top level) and is one of the
acceptable values, strings compared after BFCL's normalisation. simple and multiple want exactly one call,
parallel categories an order-free match of every expected call (BFCL's greedy matching, no backtracking).
A string answer for a non-string parameter is BFCL's "variable" case: compared as given.
"""

from __future__ import annotations

import re
from typing import Any

# BFCL's schema type names -> the Python types a decoded call holds ("any" answers are strings in BFCL).
_PY = {"string": str, "integer": int, "float": float, "number": float, "boolean": bool, "array": list,
       "tuple": list, "dict": dict, "object": dict, "any": str}
_STANDARDIZE = re.compile(r"[ ,./\-_*^]")

Call = dict[str, Any]  # {"name": str, "arguments": {param: value}}


def standardize(text: str) -> str:
    """BFCL's string normalisation: spaces and , . / - _ * ^ removed, lowercased, ' read as "."""
    return _STANDARDIZE.sub("", text).lower().replace("'", '"')


def _std(value: Any) -> Any:
    return standardize(value) if isinstance(value, str) else value


def _type_problem(value: Any, acceptable: list[Any], expected: type, inner: type | None) -> tuple[str | None, bool]:
    """(problem or None, is_variable): BFCL's type check of one value against the schema type."""
    given = [a for a in acceptable if a != ""]
    pattern = type(given[0]) if given else None  # a None answer gives NoneType, as in BFCL
    variable = pattern is not None and pattern is not expected
    if type(value) is expected:  # exact type: True is not an int
        if inner is None:
            return None, variable
        for alternative in acceptable:
            if not isinstance(alternative, list):
                return None, variable
            if all(_type_problem(e, alternative, inner, None)[0] is None for e in value):
                return None, variable
        return f"an element has the wrong type (want {inner.__name__})", variable
    if variable and type(value) is pattern:
        return None, True
    return f"wrong type {type(value).__name__} (want {expected.__name__})", variable


def _dict_matches(value: dict[str, Any], alternatives: list[Any]) -> bool:
    for alt in alternatives:
        if alt == "" or not isinstance(alt, dict):
            continue
        given = all(k in alt and _std(v) in [_std(a) for a in alt[k]] for k, v in value.items())
        if given and all("" in options for k, options in alt.items() if k not in value):
            return True
    return False


def _value_problem(value: Any, acceptable: list[Any]) -> str | None:
    if isinstance(value, dict):
        return None if _dict_matches(value, acceptable) else "no acceptable value matches this dict"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for alt in acceptable:
            if isinstance(alt, list) and len(alt) == len(value) and all(
                    _dict_matches(v, [a]) for v, a in zip(value, alt)):
                return None
        return "no acceptable value matches this list of dicts"
    if isinstance(value, str):
        ok = standardize(value) in [standardize(a) for a in acceptable if isinstance(a, str)]
        return None if ok else f"{value!r} is not an acceptable value"
    if isinstance(value, list):
        mine = [_std(v) for v in value]
        ok = any(isinstance(a, list) and [_std(v) for v in a] == mine for a in acceptable)
        return None if ok else f"{value!r} is not an acceptable value"
    return None if value in acceptable else f"{value!r} is not an acceptable value"


def check_call(function: dict[str, Any], call: Call, expected: dict[str, dict[str, list[Any]]]) -> str | None:
    """Why `call` is not the expected call of `function` (a BFCL schema), or None when it is right.
    `expected`: one ground-truth entry, {function name: {param: [acceptable values]}}."""
    name = function["name"]
    if call.get("name") != name or name not in expected:
        return f"wrong function {call.get('name')!r} (want {name!r})"
    answer = expected[name]
    schema = function.get("parameters") or {}
    properties = schema.get("properties") or {}
    args = call.get("arguments") or {}
    for param in schema.get("required") or []:
        if param not in args:
            return f"missing required parameter {param!r}"
    for param, value in args.items():
        if param not in properties or param not in answer:
            return f"unexpected parameter {param!r}"
        spec = properties[param]
        expected_type = _PY.get(spec.get("type", "any"), str)
        inner = _PY.get((spec.get("items") or {}).get("type", ""), None) if expected_type is list else None
        if spec.get("type") == "tuple" and isinstance(value, tuple):
            value = list(value)
        if expected_type is float and type(value) is int:
            value = float(value)
        problem, variable = _type_problem(value, answer[param], expected_type, inner)
        if problem is not None:
            return f"parameter {param!r}: {problem}"
        if variable or not isinstance(value, (dict, list, str)):
            ok = value in answer[param]
            problem = None if ok else f"{value!r} is not an acceptable value"
        else:
            problem = _value_problem(value, answer[param])
        if problem is not None:
            return f"parameter {param!r}: {problem}"
    for param, options in answer.items():
        if param not in args and "" not in options:
            return f"missing parameter {param!r}"
    return None


def check(category: str, functions: list[dict[str, Any]], ground_truth: list[dict[str, Any]],
          calls: list[Call]) -> str | None:
    """Why the model's calls for one BFCL question are wrong, or None when they are right."""
    by_name = {f["name"]: f for f in functions}
    if "parallel" in category:
        if len(calls) != len(ground_truth):
            return f"{len(calls)} calls (want {len(ground_truth)})"
        matched: set[int] = set()
        for expected in ground_truth:
            function = by_name[next(iter(expected))]
            free = (j for j in range(len(calls)) if j not in matched)
            hit = next((j for j in free if check_call(function, calls[j], expected) is None), None)
            if hit is None:
                return f"no call matches the expected {next(iter(expected))} call"
            matched.add(hit)
        return None
    if len(calls) != 1:
        return f"{len(calls)} calls (want exactly 1)"
    expected = ground_truth[0]
    return check_call(by_name.get(next(iter(expected)), functions[0]), calls[0], expected)


def is_call(calls: list[Call] | None) -> bool:
    """BFCL's relevance rule: the output decoded to at least one named call (arguments may be empty)."""
    return bool(calls) and all(c.get("name") for c in calls)
