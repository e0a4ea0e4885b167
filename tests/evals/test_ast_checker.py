"""pipelines.evals.ast_checker: BFCL's AST rules on BFCL's own data. Every ground truth, written as the
calls a perfect model would make, is right (in any order for parallel categories); each kind of mistake is
wrong with its reason."""

import json
from pathlib import Path

import pytest

from pipelines.evals.ast_checker import check, is_call, standardize

BFCL = Path(__file__).resolve().parents[3] / "shared" / "data" / "bfcl"
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple")
# Ground truths BFCL's own checker rejects too: keys outside the schema (parallel_multiple_12, _26), and a
# greedy match that takes the Microsoft-or-Apple slot first (parallel_178, calls reversed).
BFCL_QUIRKS = {"parallel_multiple_12", "parallel_multiple_26", "parallel_178"}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _first(options: list):
    value = next(o for o in options if o != "")
    if isinstance(value, dict):  # a dict answer holds a list of acceptable values per key
        return {k: _first(v) for k, v in value.items() if any(o != "" for o in v)}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [{k: _first(v) for k, v in d.items() if any(o != "" for o in v)} for d in value]
    return value


def perfect_calls(ground_truth: list[dict]) -> list[dict]:
    calls = []
    for entry in ground_truth:
        (name, params), = entry.items()
        calls.append({"name": name, "arguments": {p: _first(o) for p, o in params.items() if any(v != "" for v in o)}})
    return calls


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_ground_truth_is_right(category):
    questions = _lines(BFCL / f"BFCL_v4_{category}.json")
    answers = {a["id"]: a["ground_truth"] for a in _lines(BFCL / f"BFCL_v4_{category}.possible_answer.json")}
    wrong = {q["id"]: check(category, q["function"], answers[q["id"]], perfect_calls(answers[q["id"]])[::-1])
             for q in questions}
    assert {i for i, why in wrong.items() if why} <= BFCL_QUIRKS, {i: w for i, w in wrong.items() if w}


TRIANGLE = {"name": "calculate_triangle_area", "parameters": {"type": "dict", "properties": {
    "base": {"type": "integer"}, "height": {"type": "integer"}, "unit": {"type": "string"},
    "scale": {"type": "float"}}, "required": ["base", "height"]}}
TRUTH = [{"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""], "scale": [2.0, ""]}}]


@pytest.mark.parametrize("arguments, reason", [
    ({"base": 10, "height": 5}, None),                                   # optional parameters left out
    ({"base": 10, "height": 5, "unit": "Units", "scale": 2}, None),      # case-blind strings; int -> float
    ({"base": 10}, "missing required parameter 'height'"),
    ({"base": 10, "height": 5, "colour": "red"}, "unexpected parameter 'colour'"),
    ({"base": 10.0, "height": 5}, "parameter 'base': wrong type float (want int)"),
    ({"base": 10, "height": 6}, "parameter 'height': 6 is not an acceptable value"),
    ({"base": True, "height": 5}, "parameter 'base': wrong type bool (want int)"),
    ({"base": 10, "height": 5, "unit": "cm"}, "parameter 'unit': 'cm' is not an acceptable value"),
])
def test_each_mistake_has_its_reason(arguments, reason):
    assert check("simple_python", [TRIANGLE], TRUTH, [{"name": TRIANGLE["name"], "arguments": arguments}]) == reason


def test_call_counts_names_and_order():
    right = {"name": TRIANGLE["name"], "arguments": {"base": 10, "height": 5}}
    assert check("simple_python", [TRIANGLE], TRUTH, [right, right]) == "2 calls (want exactly 1)"
    assert check("simple_python", [TRIANGLE], TRUTH, [{**right, "name": "area"}]).startswith("wrong function")
    two = TRUTH + [{"calculate_triangle_area": {"base": [3], "height": [4], "unit": [""], "scale": [""]}}]
    other = {"name": TRIANGLE["name"], "arguments": {"base": 3, "height": 4}}
    assert check("parallel", [TRIANGLE], two, [other, right]) is None  # any order
    assert check("parallel", [TRIANGLE], two, [right, right]).startswith("no call matches")
    assert check("parallel", [TRIANGLE], two, [right]) == "1 calls (want 2)"


def test_bfcl_string_normalisation_and_relevance():
    assert standardize("New York, NY") == standardize("new york ny") == "newyorkny"
    assert standardize("it's") == 'it"s'
    assert not is_call([]) and not is_call(None) and is_call([{"name": "f", "arguments": {}}])


def test_model_output_is_decoded_as_bfcl_decodes_a_prompted_model():
    """Calls between the LFM2 tool-call tokens, a bare list, or a bare call with no tokens and no brackets
    (BFCL adds the brackets) are calls; prose that mentions a function is not."""
    from pipelines.evals.prompting import read_calls

    want = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    for text in ("<|tool_call_start|>[get_weather(city='Paris')]<|tool_call_end|>", "[get_weather(city='Paris')]",
                 "get_weather(city='Paris')", "```\nget_weather(city='Paris')\n```"):
        assert read_calls(text, "lfm2") == (want, None), text
    for text in ("The weather in Paris is mild.", "Use get_weather(city) to find out.", "def f(x):\n    return x"):
        assert read_calls(text, "lfm2") == ([], None), text
