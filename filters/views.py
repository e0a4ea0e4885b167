"""Which text of a sample a filter looks at. Dedup, diversity and decontamination filters all take a
`scope` parameter naming one of these renderings, so "the same question with different answers" and "the
same conversation" are both expressible without new code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pipelines.core.sample import Sample

Scope = Literal["conversation", "user_turns", "first_user_turn", "assistant_turns", "last_assistant_turn"]


def _role(s: Sample, role: str) -> list[str]:
    return [m.content for m in s.messages if m.role == role]


def _assistant(s: Sample) -> list[str]:
    out = []
    for m in s.messages:
        if m.role == "assistant":
            body = f"{m.reasoning}\n{m.content}" if m.reasoning else m.content
            if m.tool_calls:
                body += " " + " ".join(f"{c.name} {sorted(c.arguments.items())}" for c in m.tool_calls)
            out.append(body)
    return out


_VIEWS: dict[str, Callable[[Sample], str]] = {
    # Sample.text(): every role with its content, reasoning and tool calls (what exact dedup always used).
    "conversation": lambda s: s.text(),
    "user_turns": lambda s: "\n".join(_role(s, "user")),
    "first_user_turn": lambda s: next(iter(_role(s, "user")), ""),
    "assistant_turns": lambda s: "\n".join(_assistant(s)),
    "last_assistant_turn": lambda s: (_assistant(s) or [""])[-1],
}


def view(sample: Sample, scope: str) -> str:
    try:
        render = _VIEWS[scope]
    except KeyError:
        raise ValueError(f"unknown scope {scope!r}; known: {sorted(_VIEWS)}") from None
    if not sample.messages:
        # A seed sample has no conversation yet: the task it carries (a question, a prompt) is its text.
        persona = sample.persona or {}
        meta = sample.meta
        return str(meta.get("task") or meta.get("question") or meta.get("prompt") or persona.get("description") or "")
    return render(sample)


GROUP_HEADS = ("persona", "provenance", "meta")


def check_group_key(key: str) -> str:
    head, dot, attr = key.partition(".")
    if key in ("kind", "generator") or (head in GROUP_HEADS and dot and attr):
        return key
    raise ValueError(f"group key {key!r}: use 'kind', 'generator', or persona.ATTR / provenance.KEY / meta.KEY")


def group_value(s: Sample, key: str) -> str:
    if key == "kind":
        return s.kind
    if key == "generator":
        return str(s.provenance.get("generator") or "unknown")
    head, _, attr = key.partition(".")
    value = (getattr(s, head) or {}).get(attr)
    return "unknown" if value is None else str(value)
