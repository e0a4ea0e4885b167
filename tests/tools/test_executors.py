"""The built-in tools compute the right results, refuse what they cannot serve, and never run code."""

import pytest

from pipelines.tools.calculator import CalculatorError, evaluate
from pipelines.tools.executors import CHAINS, builtin_executors, builtin_tools
from pipelines.tools.schema import check_schema, tool_name


@pytest.fixture(scope="module")
def run():
    executors = builtin_executors()
    return lambda name, **args: executors[name](args)


def test_every_builtin_tool_has_a_valid_schema_and_chains_name_real_tools():
    names = [tool_name(t) for t in builtin_tools()]
    assert len(names) == len(set(names)) == 10
    for tool in builtin_tools():
        check_schema(tool["function"]["parameters"])
    assert all(a in names and b in names for a, b in CHAINS)


def test_arithmetic(run):
    assert run("calculate", expression="(12.5 * 4) / 3")["result"] == pytest.approx(16.6666666667)
    assert run("calculate", expression="2^10 + 4") == {"expression": "2^10 + 4", "result": 1028}
    assert run("calculate", expression="0.1 + 0.2")["result"] == 0.3
    assert run("calculate", expression="-(3 - 10) % 4")["result"] == 3
    assert "division by zero" in run("calculate", expression="1/0")["error"]
    # The tool's schema admits numbers and operators only; the evaluator itself knows a few functions.
    assert "does not match" in run("calculate", expression="sqrt(16)")["error"]
    assert evaluate("max(3, 7) - min(2, 9) + sqrt(16)") == 9
    assert evaluate("1,250.50 * 2") == 2501
    # A runaway integer (a small model's "1000...0") comes back as a float: JSON readers cannot hold it.
    assert evaluate("1" + "0" * 59) == 1e59 and isinstance(evaluate("2**70"), float)
    assert run("calculate", expression="2**62") == {"expression": "2**62", "result": 2**62}


@pytest.mark.parametrize("expression", ["__import__('os').system('true')", "open('x')", "9**9**9", "[1, 2]",
                                        "(lambda: 1)()", "2 if 1 else 3", "a + 1", ""])
def test_calculator_refuses_anything_but_arithmetic(expression):
    with pytest.raises(CalculatorError):
        evaluate(expression)


def test_units(run):
    assert run("convert_units", value=8, from_unit="C", to_unit="F") == {"value": 46.4, "unit": "F"}
    assert run("convert_units", value=212, from_unit="F", to_unit="K") == {"value": 373.15, "unit": "K"}
    assert run("convert_units", value=2.5, from_unit="acre", to_unit="ha") == {"value": 1.0117, "unit": "ha"}
    assert run("convert_units", value=1, from_unit="mi", to_unit="km") == {"value": 1.6093, "unit": "km"}
    assert run("convert_units", value=90, from_unit="min", to_unit="h") == {"value": 1.5, "unit": "h"}
    assert run("convert_units", value=5, from_unit="kg", to_unit="km") == {
        "error": "cannot convert kg (mass) to km (length)"}
    assert "cannot convert" in run("convert_units", value=5, from_unit="C", to_unit="kg")["error"]


def test_dates(run):
    assert run("add_days", date="2025-09-01", days=45) == {"date": "2025-10-16"}
    assert run("add_days", date="2024-03-01", days=-1) == {"date": "2024-02-29"}  # leap year
    assert run("days_between", start_date="2025-03-03", end_date="2025-06-20") == {"days": 109}
    assert run("day_of_week", date="1914-06-28") == {"date": "1914-06-28", "weekday": "Sunday"}
    assert "outside the calendar" in run("add_days", date="9999-12-31", days=1)["error"]
    # A string that is not a date fails the schema's format check before the function runs.
    assert run("day_of_week", date="next Tuesday")["error"].startswith("invalid arguments: date:")


def test_weather_and_money(run):
    oslo = run("get_weather", city="Oslo")
    assert oslo == {"city": "Oslo", "temperature_c": 8, "condition": "cloudy", "humidity_pct": 71, "wind_kph": 14}
    assert run("get_weather", city="Lagos, Nigeria")["city"] == "Lagos"
    assert run("get_weather", city="  CAPE   town ")["city"] == "Cape Town"
    assert run("get_weather", city="São Paulo, Brazil")["city"] == "Sao Paulo"
    assert run("get_weather", city="Atlantis") == {"error": "no weather data for 'Atlantis'"}
    assert run("convert_currency", amount=340, from_currency="GBP", to_currency="EUR") == {
        "amount": 395.95, "currency": "EUR"}
    assert run("get_exchange_rate", base="USD", quote="INR") == {"base": "USD", "quote": "INR", "rate": 83.3}
    assert run("convert_currency", amount=100, from_currency="USD", to_currency="USD")["amount"] == 100
    assert run("convert_currency", amount=1, from_currency="XYZ", to_currency="USD")["error"].startswith(
        "invalid arguments")


def test_text(run):
    assert run("count_words", text="Fresh bread every morning.") == {"words": 4, "characters": 26}
    assert run("change_case", text="hello world", case="title") == {"text": "Hello World"}
    assert run("change_case", text="Hi", case="upper") == {"text": "HI"}
    assert run("change_case", text="Hi", case="shout")["error"].startswith("invalid arguments")
