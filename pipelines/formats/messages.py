"""Our `Message` <-> the message dicts of TRL's conversational format (OpenAI-style tool calls).

    {"role": "assistant", "content": "", "reasoning": "...",
     "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}

Reading is strict: an unknown key is an error rather than something to drop, because a key we do not
understand is usually data we would otherwise silently lose.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pipelines.core.sample import Message, ToolCall

MESSAGE_KEYS = {"role", "content", "reasoning", "thinking", "reasoning_content", "tool_calls", "name", "tool_call_id"}


def to_trl_message(m: Message) -> dict[str, Any]:
    d: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.reasoning:
        d["reasoning"] = m.reasoning
    if m.tool_calls:
        calls = []
        for c in m.tool_calls:
            call: dict[str, Any] = {"type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            if c.id is not None:
                call["id"] = c.id
            calls.append(call)
        d["tool_calls"] = calls
    if m.name is not None:
        d["name"] = m.name
    if m.tool_call_id is not None:
        d["tool_call_id"] = m.tool_call_id
    return d


def _tool_call(d: Any, where: str) -> ToolCall:
    if not isinstance(d, Mapping):
        raise ValueError(f"{where}: a tool call must be an object, got {type(d).__name__}")
    if "function" in d:
        unknown = set(d) - {"type", "function", "id"}
        if unknown or d.get("type", "function") not in ("function", None):
            raise ValueError(f"{where}: unknown tool call keys {sorted(unknown)} or type {d.get('type')!r}")
        func, call_id = d["function"], d.get("id")
    else:
        func, call_id = d, d.get("id")
    if not isinstance(func, Mapping) or not isinstance(func.get("name"), str):
        raise ValueError(f"{where}: a tool call needs a function name, got {d!r}")
    unknown = set(func) - {"name", "arguments", "id", "type"}
    if unknown:
        raise ValueError(f"{where}: unknown tool call keys {sorted(unknown)}")
    args = func.get("arguments")
    if isinstance(args, str):  # OpenAI and our parquet files carry arguments as a JSON string
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: arguments of {func['name']!r} are not valid JSON: {e}") from None
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise ValueError(f"{where}: arguments of {func['name']!r} must be an object, got {args!r}")
    return ToolCall(name=func["name"], arguments=dict(args), id=call_id)


def from_trl_message(d: Any, where: str = "message") -> Message:
    """A TRL/OpenAI message dict -> Message. Keys holding None count as absent (parquet fills them in)."""
    if isinstance(d, Message):
        return d
    if not isinstance(d, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
    present = {k: v for k, v in d.items() if v is not None}
    unknown = set(present) - MESSAGE_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown message keys {sorted(unknown)}; known: {sorted(MESSAGE_KEYS)}")
    if "role" not in present:
        raise ValueError(f"{where}: message has no role")
    content = present.get("content", "")
    if not isinstance(content, str):
        raise ValueError(f"{where}: content must be a string, got {type(content).__name__} "
                         "(multimodal content parts are not supported)")
    thoughts = [present[k] for k in ("reasoning", "thinking", "reasoning_content") if present.get(k)]
    if len(set(thoughts)) > 1:
        raise ValueError(f"{where}: conflicting reasoning fields")
    reasoning = thoughts[0] if thoughts else None
    if reasoning is not None and not isinstance(reasoning, str):
        raise ValueError(f"{where}: reasoning must be a string")
    calls = [_tool_call(c, f"{where}.tool_calls[{i}]") for i, c in enumerate(present.get("tool_calls") or [])]
    return Message(role=present["role"], content=content, reasoning=reasoning, tool_calls=calls,
                   name=present.get("name"), tool_call_id=present.get("tool_call_id"))


def as_messages(messages: Any) -> list[Message]:
    return [from_trl_message(m, f"messages[{i}]") for i, m in enumerate(messages)]
