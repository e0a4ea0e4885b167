"""Is a call's argument value actually in the conversation? A cheap semantic check for generated calls.

Constrained decoding makes a small model's calls *valid*; it does not stop it from inventing values
("city": "Lagos" when the user asked about Oslo). A call is grounded when every value the model had to
copy appears in what it could see: the user's request and the results of earlier calls.

- strings: found in the context after folding case and accents and collapsing spaces, or at least the part
  before a comma ("Amman, Jordan" when the request says Amman); a string made of numbers and arithmetic (a
  calculator expression) is grounded when each of its numbers is;
- numbers: equal to a number written in the context (digit groups and percentages understood), or to a
  number word ("two", "a dozen");
- dates (format "date"): the ISO text, or its year, month and day written anywhere ("15 September 2025");
- enum values and booleans are exempt: they are choices (units, currency codes, flags), not copies, and
  "euros" -> "EUR" is exactly what the model should do.

`answer_uses_results` is the same idea for the final answer: it must state at least one value the tools
returned; `invented_numbers` the converse: no figure the conversation does not give.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")
_ARITHMETIC = re.compile(r"^[\d\s.,+\-*/()%^x×÷]+$")
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50,
    "hundred": 100, "thousand": 1000, "dozen": 12, "half": 0.5, "twice": 2, "once": 1, "single": 1,
    "double": 2, "triple": 3, "couple": 2, "pair": 2, "quarter": 0.25,
}


def _norm(text: str) -> str:
    # Accents folded too: "Sao Paulo" in a request grounds "São Paulo" in a call, and the other way round.
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(text.casefold().split())


def _to_float(token: str) -> float | None:
    # "1,250.50" (digit groups) and "2,5" (decimal comma) are both common in requests.
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", token):
        token = token.replace(",", "")
    elif token.count(",") == 1 and "." not in token:
        token = token.replace(",", ".")
    try:
        return float(token)
    except ValueError:
        return None


def context_numbers(text: str) -> list[float]:
    numbers = [n for n in (_to_float(t) for t in _NUMBER.findall(text)) if n is not None]
    numbers += [abs(n) for n in numbers]  # "-5" in a request and 5 in a call, or the other way round
    numbers += [n / 100 for n in numbers]  # "15%" -> 0.15
    words = re.findall(r"[a-z]+", text.casefold())
    numbers += [_NUMBER_WORDS[w] for w in words if w in _NUMBER_WORDS]
    return numbers


def number_in(value: float, numbers: list[float]) -> bool:
    return any(math.isclose(value, n, rel_tol=1e-6, abs_tol=1e-9) for n in numbers)


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _date_in(value: str, text: str, numbers: list[float]) -> bool:
    """A YYYY-MM-DD date is in the text when its year, month (number or name) and day all are."""
    iso = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", value)
    if not iso:
        return False
    year, month, day = (int(g) for g in iso.groups())
    month_named = 1 <= month <= 12 and re.search(rf"\b{_MONTHS[month - 1]}", text) is not None
    return number_in(year, numbers) and number_in(day, numbers) and (month_named or number_in(month, numbers))


def _exempt(schema: dict[str, Any]) -> bool:
    return "enum" in schema or "const" in schema or schema.get("type") == "boolean"


def ungrounded_values(arguments: dict[str, Any], parameters: dict[str, Any], context: str) -> list[str]:
    """'path=value' for every argument value not found in `context` (empty when all are grounded)."""
    text, numbers = _norm(context), context_numbers(context)
    missing: list[str] = []

    def visit(value: Any, schema: dict[str, Any], path: str) -> None:
        if _exempt(schema) or isinstance(value, bool) or value is None:
            return
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for k, v in value.items():
                visit(v, props.get(k, {}), f"{path}.{k}" if path else k)
        elif isinstance(value, list):
            items = schema.get("items", {}) if isinstance(schema.get("items"), dict) else {}
            for j, v in enumerate(value):
                visit(v, items, f"{path}[{j}]")
        elif isinstance(value, (int, float)):
            if not number_in(float(value), numbers):
                missing.append(f"{path}={value!r}")
        elif isinstance(value, str):
            needle = _norm(value)
            # "Amman, Jordan" for a request that says "Amman": the qualifier after a comma may be added.
            if not needle or needle in text or (len(head := needle.split(",")[0].strip()) >= 3 and head in text):
                return
            if schema.get("format") == "date" and _date_in(value, text, numbers):
                return
            if _ARITHMETIC.match(value) and any(ch.isdigit() for ch in value):
                parts = [_to_float(t) for t in _NUMBER.findall(value)]
                if all(p is not None and number_in(abs(p), numbers) for p in parts):
                    return
            missing.append(f"{path}={value!r}")

    visit(arguments, parameters, "")
    return missing


def leaves(value: Any) -> list[Any]:
    """The plain values (numbers, strings) in a JSON value; booleans and nulls are not values to copy."""
    if isinstance(value, dict):
        return [x for v in value.values() for x in leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in leaves(v)]
    return [] if isinstance(value, bool) or value is None else [value]


def answer_uses_results(answer: str, results: list[Any], asked: str = "") -> bool:
    """Does the final answer report every result: for each result that adds a value the request `asked`
    did not already state (a number, or a text of three characters or more), does it state at least one of
    them? An answer that uses none did not read them: "The number 12345.67 USD is converted to EUR." names
    the request's EUR, not the result's 11358.02; one that reports the first of two parallel lookups and
    not the second (read from the 0.5B teacher) answers half the request."""
    text, numbers = _norm(answer), context_numbers(answer)
    known_text, known = _norm(asked), context_numbers(asked)

    def new(leaf: Any) -> bool:
        if isinstance(leaf, bool) or not isinstance(leaf, (int, float, str)):
            return False
        if isinstance(leaf, str):
            return len(leaf.strip()) >= 3 and _norm(leaf) not in known_text
        return not number_in(float(leaf), known)

    def stated(leaf: Any) -> bool:
        return _norm(leaf) in text if isinstance(leaf, str) else number_in(float(leaf), numbers)

    added = [[leaf for leaf in leaves(r) if new(leaf)] for r in results]
    return any(added) and all(any(map(stated, values)) for values in added if values)


def invented_numbers(answer: str, context: str) -> list[str]:
    """Numbers an answer states that nothing in `context` (the request, the results, earlier turns) gives,
    rounding allowed ("36231.88" for a result of 36231.88333). Whole numbers up to 10 are exempt: counts
    and ordinals ("3 people", "2 options") are words as much as figures; a rate of 0.98 is not. Seen from the 0.5B teacher: "each
    person would receive $12115.44" for a result of 36231.88, "100,000 EUR is $362,315.44"."""
    known = context_numbers(context)
    invented = []
    for token in _NUMBER.findall(answer):
        value = _to_float(token)
        if value is None or (abs(value) <= 10 and value.is_integer()):
            continue
        places = len(token.rsplit(".", 1)[1]) if "." in token else 0
        if not any(number_in(abs(value), [abs(n)]) or round(abs(n), places) == abs(value) for n in known):
            invented.append(token)
    return invented
