"""Decoding schemas: llama.cpp can compile them for every real tool, they admit the real ground-truth calls
(within the length caps), and they admit nothing else of the wrong shape."""

import json

import pytest
from llama_cpp import LlamaGrammar

from pipelines.tools.decoding import MAX_ITEMS, MAX_STRING, calls_schema, decoding_schema
from pipelines.tools.executors import builtin_tools
from pipelines.tools.schema import normalise_tool, schema_errors, tool_name
from tests.tools.bfcl import KNOWN_BAD_GROUND_TRUTH, calls_of, questions


def _within_caps(value) -> bool:
    if isinstance(value, str):
        return 0 < len(value) <= MAX_STRING and not any(c in value for c in '"\\') and value.isprintable()
    if isinstance(value, list):
        return 0 < len(value) <= MAX_ITEMS and all(_within_caps(v) for v in value)
    if isinstance(value, dict):
        return all(_within_caps(v) for v in value.values())
    return True


def test_llama_cpp_compiles_a_grammar_for_every_bfcl_question_and_the_builtin_tools():
    seen = 0
    for qs in questions().values():
        for q in qs:
            tools = [normalise_tool(f) for f in q["function"]]
            LlamaGrammar.from_json_schema(json.dumps(calls_schema(tools, 1, 3)), verbose=False)
            seen += 1
    LlamaGrammar.from_json_schema(json.dumps(calls_schema(builtin_tools(), 2, 4)), verbose=False)
    assert seen == sum(len(q) for q in questions().values())


def test_ground_truth_calls_fit_their_decoding_schema_unless_over_a_cap():
    admitted = over_cap = 0
    for qs in questions().values():
        for q in qs:
            if q["id"] in KNOWN_BAD_GROUND_TRUTH:
                continue
            tools = {tool_name(t): t for t in map(normalise_tool, q["function"])}
            for call in calls_of(q["id"]):
                errors = schema_errors(calls_schema([tools[call["name"]]]), {"calls": [call]})
                if _within_caps(call["arguments"]):
                    assert errors == [], (q["id"], call, errors)
                    admitted += 1
                else:
                    over_cap += 1
    assert admitted > 1650 and over_cap < 40


def test_calls_schema_admits_only_offered_tools_with_their_own_arguments():
    by_name = {tool_name(t): t for t in builtin_tools()}
    schema = calls_schema([by_name["get_weather"], by_name["convert_units"]], 1, 2)
    ok = {"calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}},
                    {"name": "convert_units", "arguments": {"value": 8, "from_unit": "C", "to_unit": "F"}}]}
    assert schema_errors(schema, ok) == []
    bad = [
        {"calls": []},                                                                 # too few
        {"calls": ok["calls"] * 2},                                                    # too many
        {"calls": [{"name": "get_weather", "arguments": {"value": 8}}]},               # another tool's args
        {"calls": [{"name": "get_forecast", "arguments": {"city": "Oslo"}}]},          # not offered
        {"calls": [{"name": "get_weather", "arguments": {"city": "Oslo", "x": 1}}]},   # undeclared argument
        {"calls": [{"name": "get_weather", "arguments": {"city": "line\nbreak"}}]},    # control character
        {"calls": [{"name": "get_weather", "arguments": {"city": "x" * (MAX_STRING + 1)}}]},
    ]
    for value in bad:
        assert schema_errors(schema, value), value
    with pytest.raises(ValueError):
        calls_schema([], 1, 1)


def test_untyped_and_free_form_parameters_become_decodable():
    assert decoding_schema({"description": "anything"})["anyOf"][1] == {"type": "number"}
    free = decoding_schema({"type": "object", "description": "subject -> score"})
    assert schema_errors(free, {"math": 90, "art": "A", "tags": ["x", 1]}) == []
    assert decoding_schema({"type": "string", "format": "date", "description": "d"}) == {
        "type": "string", "format": "date"}
    assert decoding_schema({"type": ["string", "integer"]})["anyOf"][1] == {"type": "integer"}


def test_in_order_schema_makes_one_call_to_each_tool_in_turn():
    by_name = {tool_name(t): t for t in builtin_tools()}
    schema = calls_schema([by_name["get_weather"], by_name["day_of_week"]], in_order=True)
    ok = {"calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}},
                    {"name": "day_of_week", "arguments": {"date": "2025-01-01"}}]}
    assert schema_errors(schema, ok) == []
    assert schema_errors(schema, {"calls": [ok["calls"][0], ok["calls"][0]]})  # the same tool twice
    assert schema_errors(schema, {"calls": ok["calls"][::-1]})                 # the other order
    assert schema_errors(schema, {"calls": ok["calls"][:1]})                   # one missing
    LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
