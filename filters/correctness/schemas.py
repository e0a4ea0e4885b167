"""Tool schemas as the tool-call filter checks them.

Normalisation (BFCL's "dict", "float", "tuple", "any", Python type names, its "optional" markers) is
`pipelines.tools.schema.normalise_tool`, shared with the function-calling generator so both mean the same
by a tool's parameters. On top of it the filter *closes* objects (`pipelines.tools.schema.closed`, which the generator's
`validate_call` also applies): an object schema that lists its
properties and says nothing about `additionalProperties` gets `additionalProperties: false`, so an argument
the tool does not declare is an error ("unknown_argument"). A schema that sets `additionalProperties`
itself, or an object without `properties` (a free-form mapping), keeps what it says. `allOf` branches are
left open, since closing each branch of a conjunction would reject the other branches' keys.

Each jsonschema error is mapped to one reason; when a call has several, the first in REASON_ORDER wins.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

# One meaning of "valid" for generator and filter: normalising, closing objects and the cached validator
# come from pipelines.tools.schema.
from pipelines.tools.schema import cached_validator, closed, normalise_tool, schema_key

REASON_ORDER = ("unknown_argument", "missing_required", "wrong_type", "enum_violation", "schema_violation")
_BY_KEYWORD = {
    "additionalProperties": "unknown_argument",
    "unevaluatedProperties": "unknown_argument",
    "required": "missing_required",
    "type": "wrong_type",
    "enum": "enum_violation",
    "const": "enum_violation",
}


def offered_tools(tools: list[Any], closed: bool) -> dict[str, dict[str, Any]]:
    """name -> parameters schema (normalised, closed when asked). Raises ToolSchemaError on a bad tool.
    Cached by content: generated samples share a few tool lists, and normalising checks the meta-schema."""
    return _offered(schema_key(tools), closed)


@lru_cache(maxsize=1024)
def _offered(key: bytes, closed_objects: bool) -> dict[str, dict[str, Any]]:
    out = {}
    for i, tool in enumerate(orjson.loads(key)):
        fn = normalise_tool(tool, f"tools[{i}]")["function"]
        out[fn["name"]] = closed(fn["parameters"]) if closed_objects else fn["parameters"]
    return out


def argument_errors(schema: dict[str, Any], arguments: dict[str, Any]) -> list[tuple[str, str]]:
    """(reason, message) for every way `arguments` fails `schema`, most important reason first."""
    validator = cached_validator(schema_key(schema))
    found = []
    for e in validator.iter_errors(arguments):
        reason = _BY_KEYWORD.get(str(e.validator), "schema_violation")
        where = ".".join(str(p) for p in e.absolute_path) or "(arguments)"
        found.append((reason, f"{where}: {e.message}"))
    return sorted(found, key=lambda rm: (REASON_ORDER.index(rm[0]), rm[1]))
