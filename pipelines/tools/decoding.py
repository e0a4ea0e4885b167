"""Schemas for constrained decoding: what the model is allowed to write, as JSON Schema.

The client hands a request's `json_schema` to the backend, which turns it into a grammar (llama.cpp) or a
`response_format` (servers). For tool calls we ask for

    {"calls": [{"name": <one offered tool>, "arguments": <that tool's parameters>}, ...]}

with one `anyOf` branch per offered tool, so the name picks the branch and the arguments must then fit
that tool. The argument schemas are tightened for decoding only (the stored tool schema is untouched):

- free strings get a length cap and may not contain control characters: a small model otherwise writes
  until max_tokens, or puts a raw newline in a string, which is not JSON;
- arrays get an item cap, for the same reason;
- a parameter with no type at all (BFCL "any") becomes string | number | boolean, because the llama.cpp
  converter has no rule for "any value";
- annotations (description, default, examples, title) are dropped: they change nothing in a grammar.

Anything the grammar cannot express (minimum/maximum, formats it does not know) is still checked after
decoding against the real tool schema by `pipelines.tools.schema.validate_calls`.
"""

from __future__ import annotations

from typing import Any

from pipelines.tools.schema import tool_name, tool_parameters

MAX_STRING = 120
MAX_ITEMS = 6
_ANNOTATIONS = {"description", "default", "examples", "title", "$comment", "deprecated", "readOnly", "writeOnly"}
# Printable characters only (JSON escapes are not allowed either, so a string is always plain text).
_STRING_PATTERN = "^[^\"\\\\\\x00-\\x1f]{1,%d}$"
_FORMATS_THE_GRAMMAR_KNOWS = {"date", "time", "date-time", "uuid"}


def free_string(max_length: int = MAX_STRING) -> dict[str, Any]:
    return {"type": "string", "pattern": _STRING_PATTERN % max_length}


def _primitive() -> dict[str, Any]:
    return {"anyOf": [free_string(), {"type": "number"}, {"type": "boolean"}]}


def _plain_value() -> dict[str, Any]:
    """A value in a free-form mapping: a plain value or a short list of them."""
    return {"anyOf": [*_primitive()["anyOf"], {"type": "array", "items": _primitive(), "maxItems": MAX_ITEMS}]}


def decoding_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of a (normalised) parameter schema that a grammar can enforce and a small model can finish."""
    if "enum" in schema or "const" in schema:
        return {k: v for k, v in schema.items() if k in ("enum", "const")}
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return {"anyOf": [decoding_schema(s) for s in schema[union]]}
    kind = schema.get("type")
    if kind is None:
        return _primitive()
    if isinstance(kind, list):
        return {"anyOf": [decoding_schema({**schema, "type": t}) for t in kind]}
    if kind == "string":
        if schema.get("format") in _FORMATS_THE_GRAMMAR_KNOWS:
            return {"type": "string", "format": schema["format"]}
        if str(schema.get("pattern", "")).startswith("^") and schema["pattern"].endswith("$"):
            # llama.cpp converts only anchored patterns; others fall back to a free string and are
            # checked after decoding.
            return {"type": "string", "pattern": schema["pattern"]}
        return free_string(min(schema.get("maxLength", MAX_STRING), MAX_STRING))
    if kind == "array":
        items = schema.get("items")
        out: dict[str, Any] = {"type": "array", "items": decoding_schema(items) if isinstance(items, dict) else _primitive()}
        out["minItems"] = schema.get("minItems", 1)
        out["maxItems"] = min(schema.get("maxItems", MAX_ITEMS), MAX_ITEMS)
        return out
    if kind == "object":
        props = schema.get("properties")
        if not props:  # a free-form mapping: keys the model picks, plain values
            return {"type": "object", "additionalProperties": _plain_value()}
        return {
            "type": "object",
            "properties": {name: decoding_schema(sub) for name, sub in props.items()},
            "required": list(schema.get("required", [])),
            "additionalProperties": False,
        }
    return {k: v for k, v in schema.items() if k not in _ANNOTATIONS}


def calls_schema(tools: list[dict[str, Any]], min_calls: int = 1, max_calls: int = 1,
                 in_order: bool = False) -> dict[str, Any]:
    """The JSON shape of a list of calls to the offered tools (see the module docstring). in_order: exactly
    one call to each tool, in the order given (`prefixItems`), e.g. a parallel turn of two different tools,
    which a small model given the choice fills with two calls to the same one."""
    if not tools:
        raise ValueError("calls_schema needs at least one tool")
    if not 1 <= min_calls <= max_calls:
        raise ValueError(f"need 1 <= min_calls <= max_calls, got {min_calls}, {max_calls}")
    branches = [{
        "type": "object",
        "properties": {"name": {"const": tool_name(t)}, "arguments": decoding_schema(tool_parameters(t))},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    } for t in tools]
    if in_order:
        calls: dict[str, Any] = {"type": "array", "prefixItems": branches, "minItems": len(branches),
                                 "maxItems": len(branches)}
    else:
        calls = {"type": "array", "items": branches[0] if len(branches) == 1 else {"anyOf": branches},
                 "minItems": min_calls, "maxItems": max_calls}
    return {"type": "object", "properties": {"calls": calls}, "required": ["calls"], "additionalProperties": False}


# What a simulated tool may return when its catalog gives no result schema: a flat object of plain values
# that always has a "result" (a grammar cannot say "at least one property", and a small model left free
# answers {}).
DEFAULT_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"result": _plain_value()},
    "required": ["result"],
    "additionalProperties": {"anyOf": [free_string(80), {"type": "number"}, {"type": "boolean"}]},
}
