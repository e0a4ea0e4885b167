"""LFM2 output splitting: reasoning, marked and bare pythonic tool calls, and clear errors."""

from __future__ import annotations

import pytest

from pipelines.llm.errors import ToolCallError
from pipelines.llm.lfm2_output import parse_pythonic_calls, split_output


def test_think_and_marked_tool_calls():
    raw = ('<think>The user wants weather.</think>Let me check.<|tool_call_start|>[get_weather(city="Paris", '
           'days=3), convert(units={"t": "C"}, exact=True)]<|tool_call_end|><|im_end|>')
    text, reasoning, calls = split_output(raw, tools_offered=True)
    assert text == "Let me check." and reasoning == "The user wants weather."
    assert calls == [{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}},
                     {"name": "convert", "arguments": {"units": {"t": "C"}, "exact": True}}]


def test_bare_calls_only_when_tools_were_offered():
    assert split_output('[math.sqrt(x=2)]', tools_offered=True) == ("", None, [
        {"name": "math.sqrt", "arguments": {"x": 2}}])
    assert split_output('[math.sqrt(x=2)]', tools_offered=False) == ("[math.sqrt(x=2)]", None, None)
    assert split_output("Plain answer.", tools_offered=True) == ("Plain answer.", None, None)


@pytest.mark.parametrize("raw, why", [
    ("<|tool_call_start|>[f(x=1)", "never closed"),
    ("<|tool_call_start|>[f(x=1)]<|tool_call_end|> and more text", "not at the end"),
    ("<|tool_call_start|>[f(x=open('/etc/passwd'))]<|tool_call_end|>", "unparseable"),
])
def test_bad_calls_raise_with_the_text(raw, why):
    with pytest.raises(ToolCallError, match=why) as err:
        split_output(raw, tools_offered=True)
    assert err.value.text and err.value.kind == "tool_call_invalid"


def test_parse_pythonic_calls_literals_only():
    assert parse_pythonic_calls('[f(a=None, b=[1, 2.5], c="x")]') == [
        {"name": "f", "arguments": {"a": None, "b": [1, 2.5], "c": "x"}}]
