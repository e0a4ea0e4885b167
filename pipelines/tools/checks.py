"""The checks a generated turn of tool calls must pass, and the conversation built from passing turns.

Each check returns a drop reason with details, or None. Reasons (the `refinery inspect --rejected` names):

- invalid_call:        a call fails its tool's JSON schema (types, required, enums, formats, ranges,
                       undeclared arguments) or names a tool that was not offered;
- wrong_tool:          the calls are not to the tools the plan (and the request) needs;
- degenerate_call:     one call passes the same text to two parameters (from_unit == to_unit, base == quote,
                       start_date == end_date): a small model's copy-the-last-value habit, not a request;
                       or a runaway value: a run of 9+ identical characters ("1000.000000000000") or a
                       number of 10^12 or more, what a small model writes when it cannot stop a number;
- duplicate_calls:     two calls of one turn are identical;
- repeated_call:       a later turn repeats a call already made;
- ungrounded_argument: an argument value appears neither in the request nor in an earlier result.
"""

from __future__ import annotations

import re
from typing import Any

from pipelines.core.sample import Message, ToolCall, canonical_json
from pipelines.tools.grounding import leaves, ungrounded_values
from pipelines.tools.prompting import result_json
from pipelines.tools.schema import tool_name, tool_parameters, validate_calls

Calls = list[dict[str, Any]]
Steps = list[tuple[Calls, list[dict[str, Any]]]]


def check_turn(calls: Calls, offered: list[dict[str, Any]], expected: list[str], case: str,
               earlier: Steps, distinct: bool = True) -> tuple[str, dict[str, Any]] | None:
    """Schema and plan checks for one turn of calls, and (distinct) the degenerate/duplicate/repeated
    checks; grounding is `check_grounded`."""
    problems = validate_calls(calls, offered)
    if problems:
        return "invalid_call", {"errors": problems}
    got = [c["name"] for c in calls]
    # Parallel turns may make fewer calls than planned (at least two), in any order.
    if set(got) != set(expected) or (case != "parallel" and got != expected):
        return "wrong_tool", {"expected": expected, "got": got}
    if not distinct:
        return None
    for c in calls:
        texts = [v for v in c["arguments"].values() if isinstance(v, str)]
        if len(set(texts)) < len(texts):
            return "degenerate_call", {"call": c}
        runaway = [v for v in leaves(c["arguments"]) if _runaway(v)]
        if runaway:
            return "degenerate_call", {"call": c, "runaway": runaway}
    keys = [canonical_json(c) for c in calls]
    if len(set(keys)) != len(keys):
        return "duplicate_calls", {}
    before = {canonical_json(c) for prev, _ in earlier for c in prev}
    if before & set(keys):
        return "repeated_call", {}
    return None


_RUN = re.compile(r"(.)\1{8,}")


def _runaway(value: Any) -> bool:
    if isinstance(value, (int, float)):
        return abs(value) >= 1e12
    return isinstance(value, str) and _RUN.search(value) is not None


def check_grounded(calls: Calls, offered: list[dict[str, Any]], request: str,
                   earlier: Steps) -> tuple[str, dict[str, Any]] | None:
    by_name = {tool_name(t): t for t in offered}
    context = "\n".join([request, *(result_json(r) for _, results in earlier for r in results)])
    missing = [f"{c['name']}.{m}" for c in calls
               for m in ungrounded_values(c["arguments"], tool_parameters(by_name[c["name"]]), context)]
    return ("ungrounded_argument", {"missing": missing}) if missing else None


def build_messages(request: str, steps: Steps, answer: str) -> list[Message]:
    """user -> (assistant calls -> one tool message per call)* -> assistant answer. Call ids are call_1,
    call_2, ... over the conversation; each tool message names its call's tool and id."""
    messages = [Message("user", request)]
    n = 0
    for calls, results in steps:
        tool_calls = []
        for c in calls:
            n += 1
            tool_calls.append(ToolCall(c["name"], c["arguments"], id=f"call_{n}"))
        messages.append(Message("assistant", "", tool_calls=tool_calls))
        messages += [Message("tool", result_json(r), name=tc.name, tool_call_id=tc.id)
                     for tc, r in zip(tool_calls, results)]
    messages.append(Message("assistant", answer))
    return messages
