"""Grounding: argument values a model had to copy must be in the request or an earlier result."""

import pytest

from pipelines.tools.executors import builtin_executors
from pipelines.tools.grounding import answer_uses_results, ungrounded_values


def params(name):
    return builtin_executors()[name].tool["function"]["parameters"]


@pytest.mark.parametrize("tool, arguments, context", [
    ("get_weather", {"city": "Oslo"}, "What's the weather in OSLO today?"),
    ("get_weather", {"city": "Amman, Jordan"}, "Is it hot in Amman now?"),      # a qualifier may be added
    ("get_weather", {"city": "São Paulo"}, "weather in sao paulo please"),     # accents folded
    ("convert_currency", {"amount": 1200, "from_currency": "USD", "to_currency": "KES"},
     "client paid 1,200 dollars, how much in shillings"),                   # enums are choices, not copies
    ("calculate", {"expression": "250 * 83.3"}, 'what would 250 dollars be? {"rate": 83.3}'),
    ("add_days", {"date": "2025-09-15", "days": 2}, "two days after 15 September 2025"),
    ("convert_units", {"value": 0.15, "from_unit": "kg", "to_unit": "g"}, "15% of a kilo in grams"),
    ("convert_units", {"value": 2.5, "from_unit": "acre", "to_unit": "ha"}, "my field is 2,5 acres"),
])
def test_grounded(tool, arguments, context):
    assert ungrounded_values(arguments, params(tool), context) == []


@pytest.mark.parametrize("tool, arguments, context, missing", [
    ("get_weather", {"city": "Lagos"}, "What's the weather in Oslo?", ["city='Lagos'"]),
    ("calculate", {"expression": "250 * 90"}, "what would 250 dollars be at 83.3", ["expression='250 * 90'"]),
    ("add_days", {"date": "2025-09-01", "days": 45}, "45 days after 2025-10-01", ["date='2025-09-01'"]),
    ("count_words", {"text": "a story"}, "count the words in my essay", ["text='a story'"]),
])
def test_ungrounded(tool, arguments, context, missing):
    assert ungrounded_values(arguments, params(tool), context) == missing


def test_an_answer_must_state_a_result():
    results = [{"city": "Cairo", "temperature_c": 31, "condition": "clear"}]
    assert answer_uses_results("It is 31°C and clear in Cairo.", results)
    assert answer_uses_results("Clear skies today.", results)
    assert not answer_uses_results("My washing machine is ready.", results)
    assert not answer_uses_results("It is 30 degrees.", results)


def test_an_answer_may_round_a_result_but_not_invent_a_figure():
    from pipelines.tools.grounding import invented_numbers

    context = 'Convert 100000 EUR to USD and split it between 3 people. {"amount": 108695.65} {"result": 36231.88333}'
    assert invented_numbers("That is $108,695.65 in all, or $36,231.88 each for the 3 of you.", context) == []
    assert invented_numbers("Each person would receive $12115.44.", context) == ["12115.44"]
    assert invented_numbers("Split 2 ways it is less.", context) == []  # small counts are words


def test_an_answer_must_report_what_the_tools_added_not_what_the_request_said():
    results = [{"amount": 11358.02, "currency": "EUR"}]
    asked = "Convert 12345.67 USD to EUR."
    assert not answer_uses_results("The number 12345.67 USD is converted to EUR.", results, asked)
    assert answer_uses_results("That is 11,358.02 EUR.", results, asked)


def test_a_parallel_answer_must_report_every_lookup():
    results = [{"city": "Oslo", "temperature_c": 4, "condition": "rain"},
               {"city": "Cairo", "temperature_c": 31, "condition": "clear"}]
    asked = "What is the weather in Oslo and in Cairo?"
    assert answer_uses_results("Oslo: 4°C and rain. Cairo: 31°C and clear.", results, asked)
    assert not answer_uses_results("In Oslo it is 4°C with rain.", results, asked)  # Cairo's lookup unread
    # A result that adds nothing the request did not say cannot be reported, and is not required.
    assert answer_uses_results("It is 31°C in Cairo.", [{"city": "Cairo"}, results[1]], "Weather in Cairo?")
