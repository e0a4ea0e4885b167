"""Is an extraction supported by its passage? A cheap lexical check for `generate.grounded`'s JSON.

Schema-constrained decoding makes an extraction *valid*; it does not stop a small model from filling a
field with words the passage never used ("patient satisfaction" from a text about dosage). A text value
is supported when at least `min_support` of its content words occur in the passage, compared by a short
stem (the first five letters, a shorter word matching the start of a longer one: "randomised" and
"randomized", "trial" and "trials", "long" and "longest"); a number when the passage writes it. This is
lexical: a fact stitched from the passage's own words but attributed wrongly still passes; for that use
a judge (`filter.judge` with the `faithfulness` rubric). `repeated_items` finds lists that repeat an item.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipelines.generators.calls import content_words
from pipelines.tools.grounding import context_numbers, number_in

_STEM = 5


def _stems(text: str) -> set[str]:
    return {w[:_STEM] for w in content_words(text)}


def _prefixes(text: str) -> set[str]:
    # A short word matches the start of a longer one: "long" in "longest", "need" in "needs".
    return {w[:k] for w in content_words(text) for k in range(3, _STEM + 1)}


def _nodes(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, node) for every node of a JSON value, the value itself first: "facts[0]", "a.b"."""
    yield path, value
    if isinstance(value, dict):
        for k, x in value.items():
            yield from _nodes(x, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for j, x in enumerate(value):
            yield from _nodes(x, f"{path}[{j}]")


def unsupported_values(value: Any, passage: str, min_support: float) -> list[str]:
    """'path=value' for each text or number in `value` (an extraction) that the passage does not support."""
    stems, numbers = _prefixes(passage), context_numbers(passage)
    out: list[str] = []
    for path, v in _nodes(value):
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            supported = number_in(float(v), numbers)
        elif isinstance(v, str):
            words = _stems(v)
            supported = not words or len(words & stems) / len(words) >= min_support
        else:
            continue
        if not supported:
            out.append(f"{path}={v!r}")
    return out


def repeated_items(value: Any) -> list[str]:
    """'path' of each list in `value` (an extraction) that holds the same item twice: a small model's loop
    ("farmers", "irrigation", "farmers", "irrigation", ...), never what the text says."""
    out = []
    for path, v in _nodes(value):
        if isinstance(v, list):
            keys = [x.casefold().strip() if isinstance(x, str) else repr(x) for x in v]
            if len(set(keys)) < len(keys):
                out.append(path)
    return out
