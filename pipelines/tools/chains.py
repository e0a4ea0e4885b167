"""What a multi-step request asks for after its first call: the built-in chains (`executors.CHAINS`) worded
as a user would, with the extra value the second call needs.

Told only "get_exchange_rate, then calculate on its result", the 0.5B teacher wrote requests that ask for
the rate alone ("Get the exchange rate for USD and EUR."), and the second call then had nothing to compute
but the tool description's example ("12.5 * 4 / 3 * 0.92"): 5 of 5 multi-step probes were dropped as
ungrounded. So the request is told what comes next, in words ("then what 250 USD comes to at that rate"),
and must state the values it adds (250), which the second call's grounding check then finds.
"""

from __future__ import annotations

import random
import re
from typing import Any

# (first, second) -> (what the user asks for next, the values drawn for it). {a.x}: argument x of the first
# call. Units and currencies are enum choices: the grounding check does not need them written out.
_ASKS: dict[tuple[str, str], tuple[str, dict[str, tuple[Any, ...]]]] = {
    ("get_weather", "convert_units"): ("then that temperature in Fahrenheit", {}),
    ("get_weather", "calculate"): ("then how many degrees it is above or below {target} degrees Celsius",
                                   {"target": (15, 18, 20, 22, 25)}),
    ("get_exchange_rate", "calculate"): ("then what {amount} {a.base} comes to at that rate",
                                         {"amount": (40, 75, 120, 250, 600, 1500)}),
    ("convert_currency", "calculate"): ("then that converted amount split equally between {people} people",
                                        {"people": (2, 3, 4, 5, 6)}),
    ("convert_currency", "convert_currency"): ("then the converted amount converted again into {currency}",
                                               {"currency": ("JPY", "GBP", "INR", "BRL", "CAD", "KES")}),
    ("days_between", "calculate"): ("then what those days cost at {rate} per day", {"rate": (12, 25, 40, 65, 90)}),
    ("add_days", "day_of_week"): ("then which day of the week that new date is", {}),
    ("calculate", "convert_units"): ("then the result converted from {unit} to {other}",
                                     {"unit_pair": (("km", "mi"), ("kg", "lb"), ("L", "gal"), ("m", "ft"))}),
}


def chain_ask(first: dict[str, Any], second: str, rng: random.Random) -> tuple[str, list[str]] | None:
    """(the words for the second step, the values those words add) for a first call and the tool that
    follows it, or None when the chain is not a built-in one (tools.generate's own chains)."""
    found = _ASKS.get((first["name"], second))
    if found is None:
        return None
    words, draws = found
    values: dict[str, Any] = {f"a.{k}": v for k, v in first["arguments"].items()}
    for key, options in draws.items():
        choice = rng.choice(options)
        if key == "unit_pair":
            values["unit"], values["other"] = choice
        else:
            values[key] = choice
    if "currency" in values and values["currency"] in first["arguments"].values():
        values["currency"] = next(c for c in draws["currency"] if c not in first["arguments"].values())
    text = re.sub(r"\{([\w.]+)\}", lambda m: str(values[m.group(1)]), words)
    added = [str(values[k]) for k in draws if k in values and k not in ("currency",)]
    return text, added

