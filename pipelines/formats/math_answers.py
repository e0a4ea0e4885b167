"""Math answers compared by value: math-verify reads the final answer out of free text (LaTeX, \\boxed{},
plain numbers with thousands separators, currency signs, units) and compares symbolically, so "1,000",
"1000.0", "$1000" and "\\boxed{1000}" all equal 1000. A GSM8K worked solution counts as its final answer
(what follows the last "####"). One verifier for the reasoning generator's rejection sampling and for
filter.math_answer, so what generation keeps the filter keeps too."""

from __future__ import annotations

from typing import Any


def reference_text(value: Any) -> str:
    text = str(value)
    return text.rsplit("####", 1)[1].strip() if "####" in text else text.strip()


def _config():
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    # LaTeX first (boxed, $...$), then plain expressions/numbers: the order math-verify recommends.
    return [LatexExtractionConfig(), ExprExtractionConfig()]


def parse_answer(text: str, timeout_s: int = 5) -> list:
    from math_verify import parse

    return parse(text, extraction_config=_config(), parsing_timeout=timeout_s)


def answers_match(reference: str, answer: str, timeout_s: int = 5) -> tuple[bool, list, list]:
    """(equal, parsed reference, parsed answer)."""
    from math_verify import verify

    gold = parse_answer(reference_text(reference), timeout_s)
    got = parse_answer(answer, timeout_s)
    return bool(gold and got and verify(gold, got, timeout_seconds=timeout_s)), gold, got
