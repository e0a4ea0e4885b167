"""filter.tool_calls on the real BFCL v4 data: every ground-truth call validates against its tool's schema
and survives LFM2 rendering; systematic perturbations of those calls are rejected with the matching reason."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import replace

import pytest

from filters.correctness.schemas import offered_tools
from pipelines.core.sample import Message, Sample, ToolCall
from pipelines.formats.pythonic_calls import render_tool_calls
from tests.filters.conftest import make_step
from tests.filters.data import bfcl_samples

# BFCL's own ground truth contradicts its schema in these four questions (checked by hand):
# the schema wants an array of floats but the answer is a string expression; a `type` argument that only
# exists inside `transactions` items; string elements for an integer array; and a required
# `fuel_efficiency` whose first acceptable value is "" (omit). The validator must catch exactly these.
BFCL_INCONSISTENT = {
    "parallel_multiple_21": "wrong_type",
    "parallel_multiple_26": "unknown_argument",
    "parallel_multiple_94": "wrong_type",
    "simple_python_200": "missing_required",
}


@pytest.fixture(scope="module")
def step(tmp_path_factory):
    return make_step("filter.tool_calls", tmp_path_factory.mktemp("tc"))


@pytest.fixture(scope="module")
def valid(step):
    return [(qid, s) for qid, s in bfcl_samples() if qid not in BFCL_INCONSISTENT]


def with_calls(s: Sample, calls: list[ToolCall], content: str = "") -> Sample:
    return replace(s, messages=[s.messages[0], Message("assistant", content, tool_calls=calls)])


def test_every_bfcl_ground_truth_call_validates_and_round_trips(step):
    samples = bfcl_samples()
    assert len(samples) == 1000
    outcomes = {qid: step.keep(s) for qid, s in samples}
    failed = {qid: v.reason for qid, v in outcomes.items() if not v.keep}
    assert failed == BFCL_INCONSISTENT
    ok = [v for v in outcomes.values() if v.keep]
    assert sum(v.details["calls"] for v in ok) >= 1500  # parallel questions carry several calls each


def _schema(s: Sample, name: str) -> dict:
    return offered_tools(s.tools, closed=True)[name]


def _wrong_value(schema: dict) -> object | None:
    t = schema.get("type")
    return {"string": 12345, "integer": "twelve", "number": "twelve", "boolean": "yes",
            "array": "not a list", "object": "not an object"}.get(t if isinstance(t, str) else "")


def perturbations(s: Sample):
    """(name, expected reason, perturbed sample) for every perturbation that applies to this sample."""
    calls = s.messages[1].tool_calls
    first = calls[0]
    schema = _schema(s, first.name)
    props = schema.get("properties", {})
    yield "unknown_function", "unknown_function", with_calls(s, [replace(first, name=first.name + "_nope"), *calls[1:]])
    args = dict(first.arguments, zz_not_a_parameter=1)
    yield "unknown_argument", "unknown_argument", with_calls(s, [replace(first, arguments=args), *calls[1:]])
    for key in schema.get("required", []):
        if key in first.arguments:
            args = {k: v for k, v in first.arguments.items() if k != key}
            yield "missing_required", "missing_required", with_calls(s, [replace(first, arguments=args), *calls[1:]])
            break
    for key, value in first.arguments.items():
        bad = _wrong_value(props.get(key, {}))
        if bad is not None:
            args = {**first.arguments, key: bad}
            yield "wrong_type", "wrong_type", with_calls(s, [replace(first, arguments=args), *calls[1:]])
            break
    for call in calls:
        cprops = _schema(s, call.name).get("properties", {})
        enum_keys = [k for k in call.arguments if "enum" in cprops.get(k, {}) and cprops[k].get("type") == "string"]
        if enum_keys:
            args = {**call.arguments, enum_keys[0]: "definitely-not-an-allowed-value"}
            perturbed = [replace(c, arguments=args) if c is call else c for c in calls]
            yield "enum_violation", "enum_violation", with_calls(s, perturbed)
            break
    text = render_tool_calls(calls)
    broken = text.replace(")]", "]", 1)  # the last call loses its closing parenthesis
    yield "malformed_call_text", "malformed_call_text", with_calls(s, [], content=broken)


def test_perturbations_are_rejected_with_the_matching_reason(step, valid):
    applied: Counter = Counter()
    wrong = []
    for qid, s in valid:
        for name, expected, perturbed in perturbations(copy.deepcopy(s)):
            applied[name] += 1
            v = step.keep(perturbed)
            if v.keep or v.reason != expected:
                wrong.append((qid, name, v.keep, v.reason, v.details.get("problems", [])[:1]))
    assert not wrong, wrong[:5]
    # Every kind of perturbation was exercised many times over the 996 consistent questions.
    assert applied["unknown_function"] == applied["unknown_argument"] == applied["malformed_call_text"] == len(valid)
    assert applied["missing_required"] > 900 and applied["wrong_type"] > 900 and applied["enum_violation"] > 40


def test_problems_name_the_call_and_every_error(step, valid):
    qid, s = valid[0]
    call = s.messages[1].tool_calls[0]
    bad = with_calls(s, [replace(call, arguments={"zz": 1})])
    v = step.keep(bad)
    assert not v.keep and v.reason == "unknown_argument"
    reasons = [p["reason"] for p in v.details["problems"]]
    assert reasons[0] == "unknown_argument" and "missing_required" in reasons
    assert all(p["call"]["name"] == call.name and p["message"] == 1 for p in v.details["problems"])


def test_well_formed_call_text_left_in_content_is_flagged(step, valid):
    _, s = valid[0]
    calls = s.messages[1].tool_calls
    v = step.keep(with_calls(s, [], content=render_tool_calls(calls)))
    assert not v.keep and v.reason == "unstructured_call_text"
    bare = render_tool_calls(calls).removeprefix("<|tool_call_start|>").removesuffix("<|tool_call_end|>")
    assert step.keep(with_calls(s, [], content=bare)).reason == "unstructured_call_text"
    assert step.keep(with_calls(s, [], content="[broken(call=]")).reason == "malformed_call_text"


def test_tool_results_must_follow_calls_and_calls_can_be_required(tmp_path, valid):
    _, s = valid[0]
    step = make_step("filter.tool_calls", tmp_path, require_call=True)
    orphan = replace(s, messages=[s.messages[0], Message("tool", '{"ok": true}', name="x")])
    assert step.keep(orphan).reason == "orphan_tool_result"
    answered = replace(s, messages=[*s.messages, Message("tool", '{"area": 25}'), Message("assistant", "It is 25.")])
    assert step.keep(answered).keep
    no_call = replace(s, messages=[s.messages[0], Message("assistant", "I cannot help.")])
    assert step.keep(no_call).reason == "no_tool_call"


def test_open_objects_and_bad_tool_schemas(tmp_path, valid):
    _, s = valid[0]
    call = s.messages[1].tool_calls[0]
    extra = with_calls(s, [replace(call, arguments={**call.arguments, "zz": 1})])
    assert make_step("filter.tool_calls", tmp_path, closed_objects=False).keep(extra).keep
    tool = {"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "integer"}},
                                        "additionalProperties": True}}
    allowed = Sample(kind="tool_use", tools=[tool], messages=[
        Message("user", "hi"), Message("assistant", "", tool_calls=[ToolCall("f", {"x": 1, "y": 2})])])
    step = make_step("filter.tool_calls", tmp_path)
    assert step.keep(allowed).keep  # the schema itself allows more keys
    broken = replace(allowed, tools=[{"name": "f", "parameters": {"type": "complex-number"}}])
    assert step.keep(broken).reason == "bad_tool_schema"
