"""Is an extraction supported by its passage? A cheap lexical check for `generate.grounded`'s JSON.

Schema-constrained decoding makes an extraction *valid*; it does not stop a small model from filling a
field with words the passage never used ("patient satisfaction" from a text about dosage). A text value
is supported when at least half its content words (`min_support`) occur in the passage, compared by a short stem (the first
five letters, a shorter word matching the start of a longer one: "randomised"/"randomized",
"trial"/"trials", "long"/"longest"); a number when the passage writes it. This is
lexical: a fact stitched from the passage's own words but attributed wrongly still passes; for that use a
judge (`filter.judge` with the `faithfulness` rubric). `repeated_items` finds lists that repeat an item.
"""

from __future__ import annotations

from typing import Any

from pipelines.generators.calls import content_words
from pipelines.tools.grounding import context_numbers

_STEM = 5


def _stems(text: str) -> set[str]:
    return {w[:_STEM] for w in content_words(text)}


def _prefixes(text: str) -> set[str]:
    # A short word matches the start of a longer one: "long" in "longest", "need" in "needs".
    return {w[:k] for w in content_words(text) for k in range(3, _STEM + 1)}


def unsupported_values(value: Any, passage: str, min_support: float) -> list[str]:
    """'path=value' for each text or number in `value` (an extraction) that the passage does not support."""
    stems, numbers = _prefixes(passage), context_numbers(passage)
    out: list[str] = []

    def visit(v: Any, path: str) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                visit(x, f"{path}.{k}" if path else k)
        elif isinstance(v, list):
            for j, x in enumerate(v):
                visit(x, f"{path}[{j}]")
        elif isinstance(v, bool) or v is None:
            return
        elif isinstance(v, (int, float)):
            if not any(abs(float(v) - n) <= 1e-9 * max(1.0, abs(n)) for n in numbers):
                out.append(f"{path}={v!r}")
        elif isinstance(v, str):
            words = _stems(v)
            if words and len(words & stems) / len(words) < min_support:
                out.append(f"{path}={v!r}")

    visit(value, "")
    return out


def repeated_items(value: Any) -> list[str]:
    """'path' of each list in `value` (an extraction) that holds the same item twice: a small model's loop
    ("farmers", "irrigation", "farmers", "irrigation", ...), never what the text says."""
    out: list[str] = []

    def visit(v: Any, path: str) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                visit(x, f"{path}.{k}" if path else k)
        elif isinstance(v, list):
            keys = [x.casefold().strip() if isinstance(x, str) else repr(x) for x in v]
            if len(set(keys)) < len(keys):
                out.append(path)
            for j, x in enumerate(v):
                visit(x, f"{path}[{j}]")

    visit(value, "")
    return out
