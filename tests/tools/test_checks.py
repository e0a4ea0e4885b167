"""Turn checks on generated calls: degenerate calls (a value repeated across parameters, or a runaway
value) are named, sane calls pass."""

import pytest

from pipelines.tools.checks import check_turn
from pipelines.tools.executors import builtin_executors


def offered(*names):
    return [builtin_executors()[n].tool for n in names]


@pytest.mark.parametrize("call", [
    {"name": "get_exchange_rate", "arguments": {"base": "USD", "quote": "USD"}},
    {"name": "add_days", "arguments": {"date": "2024-04-20", "days": 1000000000000000}},
    {"name": "calculate", "arguments": {"expression": "130 + 10.50 + 1000.000000000000000000"}},
])
def test_degenerate_calls_are_named(call):
    problem = check_turn([call], offered(call["name"]), [call["name"]], "single", [])
    assert problem is not None and problem[0] == "degenerate_call" and problem[1]["call"] == call


@pytest.mark.parametrize("call", [
    {"name": "get_exchange_rate", "arguments": {"base": "USD", "quote": "EUR"}},
    {"name": "convert_units", "arguments": {"value": 1000000, "from_unit": "mm", "to_unit": "km"}},
    {"name": "calculate", "arguments": {"expression": "1200 * 0.15 + 99.99"}},
])
def test_sane_calls_pass(call):
    assert check_turn([call], offered(call["name"]), [call["name"]], "single", []) is None
