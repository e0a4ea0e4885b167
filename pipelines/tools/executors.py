"""Built-in tools that really run: deterministic Python behind an OpenAI-style schema.

Tool results in generated data come from here whenever the offered tool is one of these, so a result is
correct by construction (the model only writes the call). The world they see is small and fixed
(pipelines/tools/data/world.yaml): the same call always returns the same result, and results chain into
later calls (get_weather -> convert_units, get_exchange_rate -> calculate), which is what multi-step
samples need. A call the tool cannot serve (unknown city, kg to km) returns {"error": ...}, like a real
API would, instead of raising: tool errors are legitimate training data.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from pipelines.tools.calculator import CalculatorError, evaluate
from pipelines.tools.schema import normalise_tool, schema_errors

_WORLD = Path(__file__).parent / "data" / "world.yaml"

# Linear units: factor to the dimension's base unit. Temperature is affine and handled apart.
_UNITS: dict[str, tuple[str, float]] = {
    "mm": ("length", 0.001), "cm": ("length", 0.01), "m": ("length", 1.0), "km": ("length", 1000.0),
    "in": ("length", 0.0254), "ft": ("length", 0.3048), "yd": ("length", 0.9144), "mi": ("length", 1609.344),
    "mg": ("mass", 1e-6), "g": ("mass", 0.001), "kg": ("mass", 1.0), "t": ("mass", 1000.0),
    "oz": ("mass", 0.028349523125), "lb": ("mass", 0.45359237),
    "ml": ("volume", 0.001), "l": ("volume", 1.0), "cup": ("volume", 0.2365882365),
    "gal": ("volume", 3.785411784), "fl_oz": ("volume", 0.0295735295625),
    "s": ("time", 1.0), "min": ("time", 60.0), "h": ("time", 3600.0), "day": ("time", 86400.0),
    "kph": ("speed", 1 / 3.6), "mph": ("speed", 0.44704), "m_per_s": ("speed", 1.0),
    "m2": ("area", 1.0), "ha": ("area", 10000.0), "acre": ("area", 4046.8564224), "ft2": ("area", 0.09290304),
}
_TEMPERATURE = ("C", "F", "K")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class ToolExecutionError(ValueError):
    """The call is well-formed but the tool cannot serve it; becomes {"error": message} in the result."""


@cache
def world() -> dict[str, Any]:
    return yaml.safe_load(_WORLD.read_text(encoding="utf-8"))


def _round(x: float) -> int | float:
    x = round(x, 4)
    return int(x) if float(x).is_integer() else x


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ToolExecutionError(f"{name} must be a date as YYYY-MM-DD, got {value!r}") from None


def calculate(expression: str) -> dict[str, Any]:
    try:
        return {"expression": expression, "result": evaluate(expression)}
    except CalculatorError as exc:
        raise ToolExecutionError(str(exc)) from None


def convert_units(value: float, from_unit: str, to_unit: str) -> dict[str, Any]:
    if from_unit in _TEMPERATURE or to_unit in _TEMPERATURE:
        if not (from_unit in _TEMPERATURE and to_unit in _TEMPERATURE):
            raise ToolExecutionError(f"cannot convert {from_unit} to {to_unit}: different kinds of quantity")
        kelvin = {"C": value + 273.15, "F": (value - 32) * 5 / 9 + 273.15, "K": value}[from_unit]
        out = {"C": kelvin - 273.15, "F": (kelvin - 273.15) * 9 / 5 + 32, "K": kelvin}[to_unit]
        return {"value": _round(out), "unit": to_unit}
    (dim_a, fa), (dim_b, fb) = _UNITS[from_unit], _UNITS[to_unit]
    if dim_a != dim_b:
        raise ToolExecutionError(f"cannot convert {from_unit} ({dim_a}) to {to_unit} ({dim_b})")
    return {"value": _round(value * fa / fb), "unit": to_unit}


def add_days(date: str, days: int) -> dict[str, Any]:
    try:
        return {"date": (_date(date, "date") + dt.timedelta(days=days)).isoformat()}
    except OverflowError:
        raise ToolExecutionError(f"{date} plus {days} days is outside the calendar") from None


def days_between(start_date: str, end_date: str) -> dict[str, Any]:
    return {"days": (_date(end_date, "end_date") - _date(start_date, "start_date")).days}


def day_of_week(date: str) -> dict[str, Any]:
    return {"date": date, "weekday": _WEEKDAYS[_date(date, "date").weekday()]}


def _city_key(text: str) -> str:
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(text.replace("-", " ").split()).lower()


def get_weather(city: str) -> dict[str, Any]:
    table = world()["weather"]
    # "Lagos, Nigeria", "lagos" and "São Paulo" find Lagos and Sao Paulo: the whole name, then its first part.
    entry = table.get(_city_key(city.replace(",", " "))) or table.get(_city_key(city.split(",")[0]))
    if entry is None:
        raise ToolExecutionError(f"no weather data for {city!r}")
    return dict(entry)


def _rate(base: str, quote: str) -> float:
    return world()["usd_rates"][quote] / world()["usd_rates"][base]


def get_exchange_rate(base: str, quote: str) -> dict[str, Any]:
    return {"base": base, "quote": quote, "rate": float(f"{_rate(base, quote):.6g}")}


def convert_currency(amount: float, from_currency: str, to_currency: str) -> dict[str, Any]:
    return {"amount": round(amount * _rate(from_currency, to_currency), 2), "currency": to_currency}


def count_words(text: str) -> dict[str, Any]:
    return {"words": len(text.split()), "characters": len(text)}


def change_case(text: str, case: str) -> dict[str, Any]:
    return {"text": {"upper": text.upper(), "lower": text.lower(), "title": text.title()}[case]}


def _currencies() -> list[str]:
    # In the table's order (USD, EUR, GBP, ... first), not sorted: prompts show the first few values of an
    # enum, and a small model picks among those it sees.
    return list(world()["usd_rates"])


def _fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return normalise_tool({"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required}})


def _str(description: str, **kw: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **kw}


def _schemas() -> dict[str, dict[str, Any]]:
    units = [*_UNITS, *_TEMPERATURE]
    cur = _currencies()
    date = {"type": "string", "format": "date"}
    return {
        # The pattern keeps the expression to numbers and operators, which also keeps a small model's
        # constrained decoding from writing words into it.
        "calculate": _fn("calculate", "Evaluate an arithmetic expression of numbers, + - * / ^ % and parentheses.",
                         # No literal example: the 0.5B teacher copied "(12.5 * 4) / 3" as the call for
                         # requests about other numbers (in 5 of 9 ungrounded drops in bench/function_calling.py).
                         {"expression": _str("The expression, written with the numbers of the request or "
                                             "of earlier tool results.",
                                             pattern="^[0-9 .+*/()%^\\-]{1,60}$")}, ["expression"]),
        "convert_units": _fn("convert_units", "Convert a quantity between units of length, mass, volume, time, "
                             "speed, area or temperature (C, F, K).",
                             {"value": {"type": "number", "description": "The quantity to convert."},
                              "from_unit": _str("Unit of the value.", enum=units),
                              "to_unit": _str("Unit to convert to.", enum=units)},
                             ["value", "from_unit", "to_unit"]),
        "add_days": _fn("add_days", "Add (or subtract, with a negative number) days to a date.",
                        {"date": {**date, "description": "Start date, YYYY-MM-DD."},
                         "days": {"type": "integer", "description": "Days to add; negative to go back."}},
                        ["date", "days"]),
        "days_between": _fn("days_between", "Count the days from one date to another.",
                            {"start_date": {**date, "description": "First date, YYYY-MM-DD."},
                             "end_date": {**date, "description": "Second date, YYYY-MM-DD."}},
                            ["start_date", "end_date"]),
        "day_of_week": _fn("day_of_week", "The weekday of a date.",
                           {"date": {**date, "description": "The date, YYYY-MM-DD."}}, ["date"]),
        "get_weather": _fn("get_weather", "Current weather in a city: temperature in Celsius, conditions, "
                           "humidity and wind.", {"city": _str("City name, e.g. 'Nairobi'.")}, ["city"]),
        "get_exchange_rate": _fn("get_exchange_rate", "Exchange rate: how many units of the quote currency "
                                 "one unit of the base currency buys.",
                                 {"base": _str("ISO code of the base currency.", enum=cur),
                                  "quote": _str("ISO code of the quote currency.", enum=cur)}, ["base", "quote"]),
        "convert_currency": _fn("convert_currency", "Convert an amount of money from one currency to another.",
                                {"amount": {"type": "number", "description": "Amount in the source currency."},
                                 "from_currency": _str("ISO code of the source currency.", enum=cur),
                                 "to_currency": _str("ISO code of the target currency.", enum=cur)},
                                ["amount", "from_currency", "to_currency"]),
        "count_words": _fn("count_words", "Count the words and characters in a text.",
                           {"text": _str("The text to count.")}, ["text"]),
        "change_case": _fn("change_case", "Rewrite a text in upper, lower or title case.",
                           {"text": _str("The text to rewrite."),
                            "case": _str("The case to use.", enum=["upper", "lower", "title"])}, ["text", "case"]),
    }


_FUNCTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "calculate": calculate, "convert_units": convert_units, "add_days": add_days, "days_between": days_between,
    "day_of_week": day_of_week, "get_weather": get_weather, "get_exchange_rate": get_exchange_rate,
    "convert_currency": convert_currency, "count_words": count_words, "change_case": change_case,
}


def served_values(name: str) -> dict[str, list[str]]:
    """Free-string parameters of a built-in tool whose world is a fixed list (get_weather: its cities), for
    decoding planned calls only: every other call may still name a city the tool answers with an error."""
    if name == "get_weather":
        return {"city": [entry["city"] for entry in world()["weather"].values()]}
    return {}


# (first, second): the second tool naturally takes the first one's result. Multi-step samples use these.
CHAINS: tuple[tuple[str, str], ...] = (
    ("get_weather", "convert_units"), ("get_exchange_rate", "calculate"), ("convert_currency", "calculate"),
    ("days_between", "calculate"), ("add_days", "day_of_week"), ("calculate", "convert_units"),
    ("convert_currency", "convert_currency"), ("get_weather", "calculate"),
)


@dataclass(frozen=True)
class Executor:
    tool: dict[str, Any]
    function: Callable[..., dict[str, Any]]

    def __call__(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The tool's JSON result. Arguments are checked against the schema first, so the function only
        ever sees well-typed values; a call the tool cannot serve gives {"error": ...}."""
        errors = schema_errors(self.tool["function"]["parameters"], arguments)
        if errors:
            return {"error": "invalid arguments: " + "; ".join(errors)}
        try:
            return self.function(**arguments)
        except ToolExecutionError as exc:
            return {"error": str(exc)}


@cache
def builtin_executors() -> dict[str, Executor]:
    """Tool name -> executor, for every built-in tool."""
    schemas = _schemas()
    return {name: Executor(schemas[name], fn) for name, fn in _FUNCTIONS.items()}


def builtin_tools() -> list[dict[str, Any]]:
    return [e.tool for e in builtin_executors().values()]
