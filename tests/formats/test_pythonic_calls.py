"""LFM2's Python-style call lists: every BFCL ground-truth call round-trips; bad text fails with a reason."""

import pytest

from pipelines.core.sample import ToolCall, canonical_json
from pipelines.formats.pythonic_calls import (
    ToolCallFormatError, looks_like_call_list, parse_tool_calls, render_tool_calls,
)
from tests.formats.samples import CATEGORIES, bfcl_entries


def typed(calls):
    """Calls as canonical JSON: equal only when names, values and types (7 vs 7.0, True vs 1) are equal."""
    return [canonical_json(c.to_dict()) for c in calls]


def test_every_bfcl_ground_truth_call_round_trips():
    entries = bfcl_entries()
    assert {cat for cat, _, _ in entries} == set(CATEGORIES)
    n_calls = 0
    for category, entry, calls in entries:
        text = render_tool_calls(calls)
        assert typed(parse_tool_calls(text)) == typed(calls), (category, entry["id"], text)
        # The bare form some runtimes emit (markers dropped as special tokens) parses the same.
        bare = text.removeprefix("<|tool_call_start|>").removesuffix("<|tool_call_end|>")
        assert typed(parse_tool_calls(bare)) == typed(calls)
        n_calls += len(calls)
    assert len(entries) == 1000 and n_calls == 1747  # the whole ground truth, not a sample of it


def test_lfm2_5_dialect_round_trips_where_it_can_and_refuses_the_rest():
    ok = refused = 0
    for _, entry, calls in bfcl_entries():
        try:
            text = render_tool_calls(calls, "lfm2.5")
        except ToolCallFormatError as e:
            assert "without escaping" in str(e)
            refused += 1
            continue
        assert typed(parse_tool_calls(text)) == typed(calls), (entry["id"], text)
        ok += 1
    assert ok > 900  # only strings holding quotes, backslashes or newlines cannot be written unescaped


def test_rendering_matches_the_templates_value_formats():
    call = ToolCall("weather.get", {"city": "Pa'ris\n", "days": 3, "f": 2.0, "flag": True, "none": None,
                                    "tags": ["a", 1, None], "opts": {"deep": False}})
    text = render_tool_calls([call, ToolCall("ping")])
    assert text == ("<|tool_call_start|>[weather.get(city='Pa\\'ris\\n', days=3, f=2.0, flag=True, none=None, "
                    "tags=[\"a\", 1, null], opts={\"deep\": false}), ping()]<|tool_call_end|>")
    assert typed(parse_tool_calls(text)) == typed([call, ToolCall("ping")])


def test_parser_accepts_what_models_write():
    assert parse_tool_calls('[get_weather(city="Paris", days=3)]') == [ToolCall("get_weather", {"city": "Paris", "days": 3})]
    assert parse_tool_calls("  <|tool_call_start|>[f(x=-1.5, y=+2), g()]<|tool_call_end|>\n") == [
        ToolCall("f", {"x": -1.5, "y": 2}), ToolCall("g", {})]
    # Python keywords are fine argument names in the format, though not in Python syntax.
    assert parse_tool_calls("[route(from='A', to='B', lambda=1)]") == [
        ToolCall("route", {"from": "A", "to": "B", "lambda": 1})]
    assert parse_tool_calls("[f(a=(1, 2), b={'k': [true, null]})]") == [ToolCall("f", {"a": [1, 2], "b": {"k": [True, None]}})]
    assert looks_like_call_list("[f(a=1)]") and not looks_like_call_list("[1, 2]")
    assert not looks_like_call_list("[see the docs](http://x.y)")


@pytest.mark.parametrize("text, problem", [
    ("[f(1)]", "positional"),
    ("[f(a=len('x'))]", "not a literal"),
    ("[__import__('os').system('true')]", "not a function name"),
    ("[f(a=x)]", "not a literal"),
    ("[f(**{'a': 1})]", "`**`"),
    ("[f(a=1, a=2)]", "given twice"),
    ("[f(a=1]", "not a Python-style call list"),
    ("<|tool_call_start|>[f(a=1)]", "without a closing"),
    ("f(a=1)", "starts with '['"),
    ("[f(a=1), 3]", "not a call"),
    ("[f(a={1: 2})]", "keys must be strings"),
])
def test_bad_call_lists_fail_with_a_reason_and_nothing_runs(text, problem):
    with pytest.raises(ToolCallFormatError) as e:
        parse_tool_calls(text)
    assert problem in str(e.value)


def test_calls_the_format_cannot_express_are_refused_when_rendering():
    for call, problem in [(ToolCall("get-weather", {}), "cannot be written"),
                          (ToolCall("f", {"x": float("nan")}), "literal"),
                          (ToolCall("f", {"bad key": 1}), "not an identifier"),
                          # Python's parser NFKC-normalises names: `\ufb01le` (the "fi" ligature) reads back as
                          # `file`, a silent rename; a NUL cannot be parsed back at all.
                          (ToolCall("open", {"\ufb01le": "a.txt"}), "normalisation would rename"),
                          (ToolCall("\ufb01nd", {}), "normalisation would change"),
                          (ToolCall("f", {"text": "a\x00b"}), "NUL")]:
        with pytest.raises(ToolCallFormatError, match=problem):
            render_tool_calls([call])
