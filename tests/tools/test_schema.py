"""The shared tool-schema normaliser and call validator, on the real BFCL v4 schemas and ground truth."""

import pytest

from pipelines.tools.catalog import BFCL_CATEGORIES, bfcl_held_out, load_catalog
from pipelines.tools.schema import (
    ToolSchemaError, check_schema, normalise_schema, normalise_tool, tool_name, validate_call, validate_calls,
)
from tests.tools.bfcl import KNOWN_BAD_GROUND_TRUTH, calls_of, questions

NON_STANDARD = {"dict", "float", "tuple", "any"}


def _types(schema):
    if isinstance(schema, dict):
        if "type" in schema:
            yield schema["type"]
        for v in schema.values():
            yield from _types(v)
    elif isinstance(schema, list):
        for v in schema:
            yield from _types(v)


def _keys(schema):
    if isinstance(schema, dict):
        for k, v in schema.items():
            if k != "properties":  # property names are data, not schema keywords
                yield k
            yield from _keys(v)
    elif isinstance(schema, list):
        for v in schema:
            yield from _keys(v)


def test_bfcl_loads_all_four_categories_and_every_schema_is_valid_json_schema():
    for category in BFCL_CATEGORIES:
        catalog = load_catalog((f"bfcl:{category}",))
        # One group per question, less the functions held out for evaluation (and questions left empty).
        kept = [q for q in questions()[category] if any(not bfcl_held_out(f["name"]) for f in q["function"])]
        assert len(catalog.groups) == len(kept)
        assert not any(bfcl_held_out(tool_name(t)) for t in catalog.tools)
        held_out = [normalise_tool(f, q["id"]) for q in questions()[category] for f in q["function"]
                    if bfcl_held_out(f["name"])]  # the eval prompts show these: they must be valid too
        for tool in [*catalog.tools, *held_out]:
            params = tool["function"]["parameters"]
            check_schema(params)  # raises on an invalid schema
            assert params["type"] == "object"
            assert not NON_STANDARD & {t for t in _types(params) if isinstance(t, str)}, tool_name(tool)
            assert "optional" not in set(_keys(params)), tool_name(tool)
    whole = load_catalog(("bfcl",))
    assert len(whole) > 450  # distinct tool definitions across the four categories, less the eval-only half
    assert len(whole.groups) == sum(any(not bfcl_held_out(f["name"]) for f in q["function"])
                                    for qs in questions().values() for q in qs)


def test_bfcl_quirks_become_standard_json_schema():
    params = normalise_schema({
        "type": "dict",
        "properties": {
            "coords": {"type": "tuple", "items": {"type": "float"}},
            "data": {"type": "any", "description": "anything"},
            "month": {"type": "string", "optional": True},
            "full": {"type": "boolean", "default": "false"},
            "diet": {"type": "array", "items": {"type": "string"}, "default": "None"},
            "scores": {"type": "dict", "description": "free-form"},
        },
        "required": ["coords", "month"],
        "optional": ["diet"],
    })
    props = params["properties"]
    assert params["type"] == "object" and params["required"] == ["coords"]  # "optional" wins over required
    assert props["coords"] == {"type": "array", "items": {"type": "number"}}
    assert props["data"] == {"description": "anything"}  # "any": no type constraint at all
    assert "optional" not in props["month"] and props["full"]["default"] is False
    assert "default" not in props["diet"]  # "None" is not an array: a wrong default is dropped
    assert props["scores"]["type"] == "object"
    check_schema(params)
    # An enum on an array (no array equals a string) means its items' values.
    tags = normalise_schema({"type": "array", "items": {"type": "string"}, "enum": ["red", "blue"]})
    assert tags == {"type": "array", "items": {"type": "string", "enum": ["red", "blue"]}}
    assert validate_call("f", {"tags": ["red"]}, [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {"tags": tags}}}}]) == []


def test_every_bfcl_ground_truth_call_validates_except_known_bfcl_errors():
    checked = 0
    for category, qs in questions().items():
        for q in qs:
            tools = [normalise_tool(f) for f in q["function"]]
            problems = validate_calls(calls_of(q["id"]), tools)
            checked += len(calls_of(q["id"]))
            if q["id"] in KNOWN_BAD_GROUND_TRUTH:
                assert problems, f"{q['id']} is listed as a BFCL error but validates"
            else:
                assert problems == [], (q["id"], problems)
    assert checked > 1700


def test_perturbed_calls_fail_with_a_reason():
    tool = normalise_tool({"name": "get_weather", "parameters": {
        "type": "dict", "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                                       "date": {"type": "string", "format": "date"}},
        "required": ["city"]}})
    assert validate_call("get_weather", {"city": "Oslo", "days": 3}, [tool]) == []
    assert "city" in validate_call("get_weather", {"days": 3}, [tool])[0]
    assert "not of type 'integer'" in validate_call("get_weather", {"city": "Oslo", "days": "3"}, [tool])[0]
    assert "unit" in validate_call("get_weather", {"city": "Oslo", "unit": "C"}, [tool])[0]  # undeclared
    assert validate_call("get_weather", {"city": "Oslo", "unit": "C"}, [tool], strict=False) == []
    assert "date" in validate_call("get_weather", {"city": "Oslo", "date": "next Tuesday"}, [tool])[0]
    assert "not one of the offered tools" in validate_call("get_forecast", {"city": "Oslo"}, [tool])[0]


def test_bad_tool_definitions_are_errors_that_say_where():
    with pytest.raises(ToolSchemaError, match=r"tool 'f'\.parameters\.x\.type: unknown type 'decimal'"):
        normalise_tool({"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "decimal"}}}})
    with pytest.raises(ToolSchemaError, match="must be an object schema"):
        normalise_tool({"name": "f", "parameters": {"type": "array"}})
    with pytest.raises(ToolSchemaError, match="name must be"):
        normalise_tool({"name": "get weather"})
    with pytest.raises(ToolSchemaError, match="not valid JSON Schema"):
        normalise_tool({"name": "f", "parameters": {"type": "object", "properties": {"x": {"minLength": -1}}}})
    openai = normalise_tool({"type": "function", "function": {"name": "f", "description": "d"}})
    assert openai == {"type": "function", "function": {
        "name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}}
