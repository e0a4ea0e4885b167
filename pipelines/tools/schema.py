"""Tool schemas: one normaliser from what real catalogs write to standard JSON Schema, and one validator.

Real catalogs are not standard JSON Schema. BFCL (the Berkeley Function Calling Leaderboard) writes
`"type": "dict"` for objects, `"float"` for numbers, `"tuple"` for fixed-length lists and `"any"` for
"no constraint"; it marks optional parameters with a non-standard `"optional"` key (a bool on the
property, or a list on the object) and writes some defaults as strings (`"default": "false"` on a
boolean). Hand-written catalogs use Python type names (`str`, `int`, `list`). `normalise_schema` maps all
of these onto draft 2020-12 JSON Schema, and `normalise_tool` wraps a function in the OpenAI/TRL tool
shape `{"type": "function", "function": {name, description, parameters}}` that `Sample.tools` holds.

Everything that checks a tool call against its tool (the function-calling generator before a sample
leaves it, the tool-call filter after) should use `validate_call`/`validate_calls` from here, so that
"valid" means the same thing everywhere.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

# Non-standard type names -> JSON Schema type (None: no type constraint at all).
TYPE_ALIASES: dict[str, str | None] = {
    "dict": "object", "object": "object", "map": "object",
    "float": "number", "double": "number", "number": "number",
    "integer": "integer", "int": "integer", "long": "integer",
    "string": "string", "str": "string",
    "boolean": "boolean", "bool": "boolean",
    "array": "array", "list": "array", "tuple": "array",
    "null": "null", "none": "null",
    "any": None,
}
_SCHEMA_LIST_KEYS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_KEYS = ("items", "additionalProperties", "not", "contains")
_TRUE = ("true", "True", "TRUE")
_FALSE = ("false", "False", "FALSE")


class ToolSchemaError(ValueError):
    """A tool definition that cannot be turned into a valid tool schema; the message names where."""


def normalise_schema(schema: Any, where: str = "parameters") -> dict[str, Any]:
    """A standard JSON Schema equivalent of `schema` (never modified in place)."""
    if not isinstance(schema, dict):
        raise ToolSchemaError(f"{where}: a schema must be an object, got {type(schema).__name__} {schema!r}")
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "optional":  # BFCL's own marker; standard JSON Schema says optional by leaving out of required
            continue
        if key == "type":
            value = _normalise_type(value, where)
            if value is None:
                continue
        elif key == "properties":
            if not isinstance(value, dict):
                raise ToolSchemaError(f"{where}.properties: must be an object, got {value!r}")
            value = {name: normalise_schema(sub, f"{where}.{name}") for name, sub in value.items()}
        elif key in _SCHEMA_KEYS and isinstance(value, dict):
            value = normalise_schema(value, f"{where}.{key}")
        elif key in _SCHEMA_LIST_KEYS:
            if not isinstance(value, list):
                raise ToolSchemaError(f"{where}.{key}: must be a list of schemas, got {value!r}")
            value = [normalise_schema(sub, f"{where}.{key}[{i}]") for i, sub in enumerate(value)]
        out[key] = value
    if "properties" in out:
        _fix_required(schema, out, where)
    _fix_array_enum(out)
    if "default" in out:
        _fix_default(out)
    return out


def _fix_array_enum(out: dict[str, Any]) -> None:
    """`{"type": "array", "enum": ["a", "b"]}` (a quirk of hand-written tool definitions) means "items from this
    list", but as written no array can equal a string, so nothing validates: the enum goes onto the items."""
    enum = out.get("enum")
    if out.get("type") != "array" or not isinstance(enum, list) or any(isinstance(v, list) for v in enum):
        return
    items = dict(out.get("items") or {})
    items.setdefault("enum", out.pop("enum"))
    out["items"] = items


def _normalise_type(value: Any, where: str) -> Any:
    if isinstance(value, list):
        mapped = [_normalise_type(v, where) for v in value]
        if None in mapped:  # "any" inside a list of types: no constraint at all
            return None
        return list(dict.fromkeys(mapped))
    if not isinstance(value, str) or value.strip().lower() not in TYPE_ALIASES:
        raise ToolSchemaError(f"{where}.type: unknown type {value!r}; known: {sorted(TYPE_ALIASES)}")
    return TYPE_ALIASES[value.strip().lower()]


def _fix_required(original: dict[str, Any], out: dict[str, Any], where: str) -> None:
    required = out.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise ToolSchemaError(f"{where}.required: must be a list of property names, got {required!r}")
    props = out["properties"]
    # A property BFCL marks optional is not required, whatever its `required` list says.
    optional = {name for name, sub in original["properties"].items()
                if isinstance(sub, dict) and sub.get("optional") in (True, *_TRUE)}
    if isinstance(original.get("optional"), list):
        optional |= set(original["optional"])
    kept = [r for r in dict.fromkeys(required) if r in props and r not in optional]
    if kept or "required" in out:
        out["required"] = kept


def _fix_default(out: dict[str, Any]) -> None:
    """Make a default match its schema (a string "false" on a boolean), or drop it: a default is only an
    annotation, and a wrong one would teach the model a wrong value."""
    default, types = out["default"], out.get("type")
    types = types if isinstance(types, list) else [types]
    if "boolean" in types and default in (*_TRUE, *_FALSE):
        out["default"] = default in _TRUE
        return
    if not _is_valid({k: v for k, v in out.items() if k != "default"}, out["default"]):
        del out["default"]


def _is_valid(schema: dict[str, Any], value: Any) -> bool:
    return cached_validator(schema_key(schema)).is_valid(value)


def normalise_tool(tool: Any, where: str = "tool") -> dict[str, Any]:
    """`{"type": "function", "function": {...}}` from either that shape or a bare function definition.

    Raises ToolSchemaError naming the problem; the result's parameters pass the JSON Schema meta-schema.
    """
    if not isinstance(tool, dict):
        raise ToolSchemaError(f"{where}: a tool must be an object, got {type(tool).__name__}")
    if tool.get("type") == "function" and "function" in tool:
        extra = set(tool) - {"type", "function"}
        if extra:
            raise ToolSchemaError(f"{where}: unknown keys {sorted(extra)} next to 'function'")
        fn = tool["function"]
    else:
        fn = tool
    if not isinstance(fn, dict):
        raise ToolSchemaError(f"{where}.function: must be an object, got {fn!r}")
    name = fn.get("name")
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        raise ToolSchemaError(f"{where}: name must be a non-empty string without spaces, got {name!r}")
    where = f"{where} {name!r}"
    description = fn.get("description", "")
    if not isinstance(description, str):
        raise ToolSchemaError(f"{where}.description: must be a string, got {description!r}")
    params = fn.get("parameters")
    params = {"type": "object", "properties": {}} if params is None else normalise_schema(params, f"{where}.parameters")
    if params.get("type") != "object":
        raise ToolSchemaError(f"{where}.parameters: must be an object schema, got type {params.get('type')!r}")
    check_schema(params, f"{where}.parameters")
    return {"type": "function", "function": {"name": name, "description": description, "parameters": params}}


def check_schema(schema: dict[str, Any], where: str = "schema") -> None:
    """Raise ToolSchemaError unless `schema` is valid draft 2020-12 JSON Schema (meta-schema check)."""
    problem = _meta_schema_problem(schema_key(schema))
    if problem:
        raise ToolSchemaError(f"{where}{problem}")


@lru_cache(maxsize=8192)
def _meta_schema_problem(key: bytes) -> str:
    # Cached by content: catalogs repeat tools (BFCL: 1,677 definitions, 1,116 distinct), and the
    # meta-schema check costs milliseconds each.
    try:
        Draft202012Validator.check_schema(orjson.loads(key))
    except SchemaError as exc:
        path = "".join(f"[{p!r}]" for p in exc.absolute_path)
        return f"{path}: not valid JSON Schema: {exc.message}"
    return ""


def tool_name(tool: dict[str, Any]) -> str:
    return tool["function"]["name"]


def tool_parameters(tool: dict[str, Any]) -> dict[str, Any]:
    return tool["function"]["parameters"]


def schema_key(schema: dict[str, Any]) -> bytes:
    return orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)


@lru_cache(maxsize=4096)
def cached_validator(key: bytes) -> Draft202012Validator:
    # Formats ("date", "date-time", ...) are checked too: a call with "date": "next Tuesday" is invalid.
    return Draft202012Validator(orjson.loads(key), format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(schema: dict[str, Any], value: Any) -> list[str]:
    """Every way `value` fails `schema`, as 'path: message' strings (empty when valid)."""
    errors = sorted(cached_validator(schema_key(schema)).iter_errors(value), key=lambda e: list(e.absolute_path))
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]


def closed(schema: Any) -> Any:
    """`schema` with `additionalProperties: false` on every object that lists its properties and does not
    say otherwise: a call passing an argument the tool does not declare is wrong, even though plain JSON
    Schema allows it. Free-form objects (no `properties`) and `allOf` branches stay open."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: closed(v) for k, v in out["properties"].items()}
        out.setdefault("additionalProperties", False)
    for key in ("items", "additionalProperties", "contains", "not"):
        if isinstance(out.get(key), dict):
            out[key] = closed(out[key])
    for key in ("prefixItems", "anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [closed(s) for s in out[key]]
    return out


def validate_call(name: str, arguments: Any, tools: list[dict[str, Any]], strict: bool = True) -> list[str]:
    """Problems with one call against the offered tools (empty when it is valid). strict: undeclared
    arguments are errors (see `closed`)."""
    offered = {tool_name(t): t for t in tools}
    if name not in offered:
        return [f"{name}: not one of the offered tools {sorted(offered)}"]
    if not isinstance(arguments, dict):
        return [f"{name}: arguments must be an object, got {type(arguments).__name__}"]
    params = tool_parameters(offered[name])
    return [f"{name}.{e}" for e in schema_errors(closed(params) if strict else params, arguments)]


def validate_calls(calls: list[Any], tools: list[dict[str, Any]], strict: bool = True) -> list[str]:
    """Problems with a list of calls (`ToolCall`s or {"name", "arguments"} dicts); empty when all are valid."""
    problems: list[str] = []
    for call in calls:
        name, arguments = (call["name"], call.get("arguments")) if isinstance(call, dict) else (call.name, call.arguments)
        problems += validate_call(name, arguments, tools, strict)
    return problems
