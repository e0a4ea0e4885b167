"""Errors shared by all model backends."""

from __future__ import annotations


class StructuredOutputError(ValueError):
    """The model was asked for JSON matching a schema and its output did not parse or validate.

    Raised instead of returning `parsed=None`, so a step can never mistake a failed extraction for an
    empty one. `text` is the raw model output, `reason` says what was wrong with it.
    """

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"structured output invalid: {reason}; text={text[:200]!r}")
        self.text = text
        self.reason = reason
