"""How tools, calls and results are written inside prompts.

A full JSON schema per tool costs hundreds of tokens and a 270M model reads a short Python-like
signature better, so prompts list each tool as one line:

    get_weather(city: string) - Current weather in a city: temperature in Celsius, ...
    convert_units(value: number, from_unit: "mm"|"cm"|"m"|..., to_unit: ...) - Convert a quantity ...

Optional parameters carry a `?`; long enums show their first few values (a small model picks among
those, so an enum's order matters: the built-in currencies list USD, EUR, GBP first). Calls and results
are JSON in exactly the shape the decoding schema enforces (`pipelines.tools.decoding.calls_schema`), so
what the examples show is what the model may write.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.tools.schema import tool_name, tool_parameters

MAX_DESCRIPTION = 140
MAX_ENUM_SHOWN = 6


def _type_text(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        values = [json.dumps(v, ensure_ascii=False) for v in schema["enum"][:MAX_ENUM_SHOWN]]
        return "|".join(values) + ("|..." if len(schema["enum"]) > MAX_ENUM_SHOWN else "")
    kind = schema.get("type")
    if kind is None:
        return "any"
    if isinstance(kind, list):
        return "|".join(kind)
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"list[{_type_text(schema['items'])}]"
    if kind == "string" and "format" in schema:
        return f"string ({schema['format']})"
    return kind


def shorten(text: str, limit: int = MAX_DESCRIPTION) -> str:
    """The first sentence, or the first `limit` characters cut at a word."""
    text = " ".join(text.split())
    for end in (". ", "? ", "! "):
        if end in text:
            text = text[: text.index(end) + 1]
            break
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + "..."
    return text


def signature(tool: dict[str, Any]) -> str:
    params = tool_parameters(tool)
    required = set(params.get("required", []))
    args = ", ".join(f"{name}{'' if name in required else '?'}: {_type_text(sub)}"
                     for name, sub in params.get("properties", {}).items())
    description = shorten(tool["function"].get("description", ""))
    return f"{tool_name(tool)}({args})" + (f" - {description}" if description else "")


def calls_json(calls: list[dict[str, Any]]) -> str:
    """`{"calls": [{"name": ..., "arguments": {...}}]}` (the decoding schema's shape, on one line)."""
    return json.dumps({"calls": [{"name": c["name"], "arguments": c["arguments"]} for c in calls]},
                      ensure_ascii=False)


def result_json(result: Any) -> str:
    return json.dumps(result, ensure_ascii=False)
