"""Recipe problems, reported the way compilers do: one `FILE:LINE: message` line each.

Validation collects every problem it can find before raising, so a user fixes a recipe in one edit
instead of one error per run. Editors and CI annotate `FILE:LINE:` lines, which is why `str(problem)`
is always exactly one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 1-based; 1 when the problem is about the whole file
    message: str

    def __str__(self) -> str:
        # Messages embed user values (which may hold newlines) and pydantic text; squash them so
        # each problem stays one greppable line.
        message = " ".join(self.message.split())
        return f"{self.file}:{self.line}: {message}"


class RecipeError(Exception):
    """A recipe (or several) failed validation; `problems` holds every problem found, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        if not self.problems:
            raise ValueError("RecipeError needs at least one problem")
        super().__init__("\n".join(str(p) for p in self.problems))


def format_path(path: tuple) -> str:
    """('steps', 'chat', 'after', 1) -> 'steps.chat.after[1]': the key path as a user would write it."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<top level>"


def hint(word: Any, candidates: Iterable[Any]) -> str:
    """' (did you mean 'x'?)' for the closest candidate, or '' when nothing is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def got(value: Any) -> str:
    """How a wrong value is shown after 'got': its YAML-ish type and a short repr."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"a list {text}" if isinstance(value, list) else f"{type(value).__name__} {text}"


# pydantic error types that mean "wrong type": said as `expected int, got str 'three'`, which names the
# YAML-level fix, rather than pydantic's "Input should be a valid integer".
_TYPE_ERRORS = {
    "int_type": "int", "int_parsing": "int", "float_type": "float", "float_parsing": "float",
    "string_type": "str", "bool_type": "bool", "list_type": "list", "tuple_type": "tuple",
    "set_type": "set", "dict_type": "mapping", "model_type": "mapping", "model_attributes_type": "mapping",
    "none_required": "null",
}


def pydantic_messages(exc: ValidationError, data: Any, what: str, fields: Iterable[str] = (),
                      skip: Iterable[str] = ()) -> list[tuple[tuple, str]]:
    """(key path within `data`, message) per offending key; `what` names a key ('parameter', 'llm key').

    Errors whose first key is in `skip` are dropped (a step's llm errors about keys it inherited from the
    recipe, already reported there). Union alternatives for one key are folded into one message.
    """
    skip = set(skip)
    grouped: dict[tuple, list[dict]] = {}
    for err in exc.errors():
        loc = _data_loc(err["loc"], data, err["type"] == "missing")
        if not (loc and loc[0] in skip):
            grouped.setdefault(loc, []).append(err)
    out = []
    for loc, errs in grouped.items():
        first = errs[0]
        if first["type"] == "extra_forbidden":
            message = f"unknown {what}{hint(loc[-1], fields) if len(loc) == 1 else ''}"
        elif first["type"] == "missing":
            message = f"missing required {what}"
        elif all(e["type"] in _TYPE_ERRORS for e in errs):
            expected = " or ".join(dict.fromkeys(_TYPE_ERRORS[e["type"]] for e in errs))
            message = f"expected {expected}, got {got(first['input'])}"
        else:
            msgs = dict.fromkeys(e["msg"].removeprefix("Input ") for e in errs if e["type"] not in _TYPE_ERRORS)
            message = f"{'; '.join(msgs)}, got {got(first['input'])}"
        out.append((loc, message))
    return out


def _data_loc(loc: tuple, data: Any, missing: bool) -> tuple:
    # pydantic puts union member tags ('int', 'str') into loc; keep only the parts that are real keys
    # (plus the absent key itself for a 'missing' error).
    out, cur = [], data
    for i, part in enumerate(loc):
        is_index = isinstance(part, int) and not isinstance(part, bool)
        if isinstance(cur, dict) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and is_index and 0 <= part < len(cur):
            out.append(part)
            cur = cur[part]
        elif missing and i == len(loc) - 1:
            out.append(part)
    return tuple(out)
