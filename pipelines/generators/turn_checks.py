"""Checks on one generated turn against the conversation so far and the few-shot examples.

Small base models loop: the simulated user asks its last question again, or says what the assistant just
said or the assistant introduces itself as the persona (it has slipped into the other role); the assistant echoes the question or its own earlier answer;
either copies a few-shot example (the embedded 270M model answered a dosage question with the example's
"make sure the tablet is connected to your Wi-Fi"). Each is caught by word-trigram containment: the share
of the new turn's trigrams found in the other text. A turn that fails is asked again with a new seed, and
if it fails every time the sample is dropped with the reason named here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_WORD = re.compile(r"\w+")


def trigrams(text: str) -> set[tuple[str, ...]]:
    """Word trigrams of the lowercased text; a text under three words is one gram of all its words."""
    w = _WORD.findall(text.lower())
    if len(w) < 3:
        return {tuple(w)} if w else set()
    return set(zip(w, w[1:], w[2:]))


def containment(text: str, other: str) -> float:
    """Share of `text`'s word trigrams that also occur in `other` (1.0: every one of them does)."""
    mine = trigrams(text)
    return len(mine & trigrams(other)) / len(mine) if mine else 0.0


def _copies(text: str, others: Iterable[str], limit: float) -> bool:
    return any(containment(text, o) >= limit for o in others if o)


def speaks_as(text: str, occupation: str | None) -> bool:
    """Does the text introduce its speaker as this occupation ("I'm a semi-professional cyclist")?"""
    if not occupation:
        return False
    return re.search(rf"\bI(?:'m|’m| am) (?:an? )?{re.escape(occupation)}\b", text, re.IGNORECASE) is not None


def turn_problem(role: str, text: str, turns: list[dict[str, Any]], example_texts: list[str],
                 limit: float, occupation: str | None = None) -> str | None:
    """Why a new `role` turn may not join the conversation, or None. `turns` holds the exchanges so far
    ({"user", "assistant"}); for an assistant turn its last entry is the user turn being answered.
    `occupation` is the persona's: an assistant that introduces itself with it has taken the user's role."""
    users = [t["user"] for t in turns]
    answers = [t["assistant"] for t in turns if t.get("assistant")]
    if role == "user":
        if _copies(text, users, limit):
            return "repeated_user_turn"
        if _copies(text, answers, limit):
            return "role_confusion"  # the simulated user repeats the assistant's words as its own
    else:
        if speaks_as(text, occupation):
            return "role_confusion"
        if _copies(text, users[-1:], limit):
            return "echoed_user_turn"
        if _copies(text, answers, limit):
            return "repeated_assistant_turn"
    if _copies(text, example_texts, limit):
        return "copied_example"
    return None
