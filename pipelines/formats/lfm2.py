"""Render a conversation as LFM2 text, and parse LFM2 text back into a conversation.

Five dialects, each equal (character for character, hence token for token) to a stock chat template:

- `lfm2`   = `lfm2_v2.jinja` (LFM2 checkpoints): tools listed in the system turn inside
             `<|tool_list_start|>[...]<|tool_list_end|>`, tool results inside
             `<|tool_response_start|>...<|tool_response_end|>`, calls as
             `<|tool_call_start|>[f(a='x')]<|tool_call_end|>`.
             The template has no reasoning field; we write reasoning as `<think>...</think>` at the start of
             every assistant turn that has it, which is what the template gives for such content.
- `lfm2.5` = `lfm2_2_5_v2.jinja` (LFM2.5): tools as `List of tools: [...]`, tool results unwrapped, and
             `<think>...</think>` kept only on assistant turns after the last user turn.
- `lfm2-llamacpp` = llama.cpp's `llama-cpp-lfm2.jinja`: like `lfm2`, but calls are written as JSON objects
             (`[{"name": "f", "arguments": {...}}]`) before the text. Render-only.
- `lfm2.5-llamacpp` = llama.cpp's `LFM2.5-8B-A1B.jinja`: `lfm2.5` with the canonical date line. Render-only.
- `lfm2.5-canonical` = leap-finetune's `lfm2_5_chat_template.jinja` ("Canonical LFM2.5"): like `lfm2.5`, but
             the system turn reads `S\n\nToday's date: D\n\nList of tools: [...]` (`date` is a parameter, so
             renders are reproducible), string arguments are JSON-quoted (apostrophes, backslashes and
             newlines are representable) and `<think>` is kept on the last assistant turn only.

`render_segments` returns the text cut into pieces marked trainable or not: an assistant turn's body up to
and including its `<|im_end|>\\n` is trainable (exactly the `{% generation %}` span of TRL's training
templates); headers, system, user and tool turns are not. The trainer builds its loss mask from it.

Round trip: `parse_conversation(render(messages, tools)) == (messages, tools)` for the `lfm2` dialect, up to
what the format does not carry (tool-call ids and the name/id of a tool result). `lfm2.5` is lossy by design
(earlier reasoning is dropped), so it is rendered but not promised to round-trip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pipelines.core.sample import Message
from pipelines.formats.messages import as_messages
from pipelines.formats.pythonic_calls import (
    DIALECTS, TOOL_CALL_END, TOOL_CALL_START, ToolCallFormatError, looks_like_call_list, parse_tool_calls,
    render_tool_calls,
)

BOS = "<|startoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
TOOL_LIST_START = "<|tool_list_start|>"
TOOL_LIST_END = "<|tool_list_end|>"
TOOL_RESPONSE_START = "<|tool_response_start|>"
TOOL_RESPONSE_END = "<|tool_response_end|>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
# Every special token LFM2's tokenizer knows for chat; the tiny test tokenizer is built with these.
SPECIAL_TOKENS = ("<|pad|>", BOS, "<|endoftext|>", IM_START, IM_END, TOOL_LIST_START, TOOL_LIST_END,
                  TOOL_CALL_START, TOOL_CALL_END, TOOL_RESPONSE_START, TOOL_RESPONSE_END)
_CFM_TAG = "CONTINUE_FINAL_MESSAGE_TAG "  # lfm2.5's continue_final_message sentinel, mirrored for exactness
PARSEABLE = ("lfm2", "lfm2.5", "lfm2.5-canonical")  # llama.cpp's layouts are rendered, not read back
_DATE_LINE = re.compile(r"Today's date: [^\n]*\n\n$")  # the canonical system turn's date line


class LFM2FormatError(ValueError):
    """Text that is not an LFM2 conversation, or a conversation LFM2's format cannot express."""


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    trainable: bool


def _tools_json(tools: Sequence[Any]) -> str:
    # `tool | tojson` in transformers' template environment is json.dumps(ensure_ascii=False).
    return ", ".join(t if isinstance(t, str) else json.dumps(t, ensure_ascii=False) for t in tools)


def _system_prompt(system: str, tools: Sequence[Any] | None, dialect: str, date: str | None) -> str:
    if not tools:
        return system
    sep = "\n" if system else ""
    if dialect in ("lfm2", "lfm2-llamacpp"):
        return f"{system}{sep}List of tools: {TOOL_LIST_START}[{_tools_json(tools)}]{TOOL_LIST_END}"
    if dialect in ("lfm2.5-canonical", "lfm2.5-llamacpp"):
        if not date:
            raise ValueError(f"the {dialect} format writes \"Today's date: ...\" when tools are offered: pass "
                             "date=YYYY-MM-DD (recorded, so the render is reproducible)")
        sep = "\n\n" if system else ""
        return f"{system}{sep}Today's date: {date}\n\nList of tools: {json.dumps(list(tools), ensure_ascii=False)}"
    return f"{system}{sep}List of tools: [{_tools_json(tools)}]"


def _assistant_body(m: Message, dialect: str, keep_thinking: bool) -> str:
    if m.reasoning and THINK_CLOSE in m.reasoning:
        raise LFM2FormatError(f"reasoning may not contain {THINK_CLOSE!r}: the turn could not be parsed back")
    if dialect in ("lfm2", "lfm2-llamacpp"):
        content = (f"{THINK_OPEN}{m.reasoning}{THINK_CLOSE}" if m.reasoning else "") + m.content
        if m.tool_calls and dialect == "lfm2-llamacpp":  # llama.cpp writes the calls before the text
            return render_tool_calls(m.tool_calls, dialect) + content
        if m.tool_calls:
            return (content if content and content != "null" else "") + render_tool_calls(m.tool_calls, dialect)
        return content
    # lfm2.5 and its canonical and llama.cpp layouts
    out = f"{THINK_OPEN}{m.reasoning}{THINK_CLOSE}" if m.reasoning and keep_thinking else ""
    content = m.content
    if not keep_thinking and THINK_CLOSE in content:
        content = content.split(THINK_CLOSE)[-1].strip()
    if m.tool_calls and content.endswith(_CFM_TAG):
        return out + content[:-len(_CFM_TAG)] + render_tool_calls(m.tool_calls, dialect) + _CFM_TAG
    out += content
    if m.tool_calls:
        out += render_tool_calls(m.tool_calls, dialect)
    return out


def render_segments(messages: Sequence[Any], tools: Sequence[Any] | None = None, dialect: str = "lfm2",
                    add_generation_prompt: bool = False, preserve_thinking: bool = False,
                    date: str | None = None) -> list[Segment]:
    """The conversation as LFM2 text, cut into trainable (assistant) and context pieces. `date`: the
    `Today's date:` of the lfm2.5-canonical format (its templates call strftime_now)."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown LFM2 dialect {dialect!r}; known: {', '.join(DIALECTS)}")
    msgs = as_messages(messages)
    if not msgs:
        raise LFM2FormatError("cannot render an empty conversation")
    system = ""
    if msgs[0].role == "system":
        system, msgs = msgs[0].content, msgs[1:]
    segments = [Segment(BOS, False)]
    prompt = _system_prompt(system, tools, dialect, date)
    if prompt:
        segments.append(Segment(f"{IM_START}system\n{prompt}{IM_END}\n", False))
    last_user = max((i for i, m in enumerate(msgs) if m.role == "user"), default=-1)
    last_assistant = max((i for i, m in enumerate(msgs) if m.role == "assistant"), default=-1)
    for i, m in enumerate(msgs):
        header = f"{IM_START}{m.role}\n"
        if m.role == "assistant":
            segments.append(Segment(header, False))
            # TRL's LFM2.5 template keeps thinking after the last user turn; the canonical one on the last
            # assistant turn only.
            recent = i == last_assistant if dialect == "lfm2.5-canonical" else i > last_user
            body = _assistant_body(m, dialect, preserve_thinking or recent)
            segments.append(Segment(f"{body}{IM_END}\n", True))
            continue
        if m.tool_calls or m.reasoning:
            raise LFM2FormatError(f"a {m.role} turn cannot carry tool calls or reasoning")
        content = m.content
        if m.role == "tool" and dialect in ("lfm2", "lfm2-llamacpp"):
            content = f"{TOOL_RESPONSE_START}{content}{TOOL_RESPONSE_END}"
        segments.append(Segment(f"{header}{content}{IM_END}\n", False))
    if add_generation_prompt:
        segments.append(Segment(f"{IM_START}assistant\n", False))
    return segments


def render(messages: Sequence[Any], tools: Sequence[Any] | None = None, dialect: str = "lfm2",
           add_generation_prompt: bool = False, preserve_thinking: bool = False, date: str | None = None) -> str:
    """LFM2 text for a conversation (Messages or TRL message dicts) and its tools (JSON schemas)."""
    return "".join(s.text for s in render_segments(messages, tools, dialect, add_generation_prompt,
                                                   preserve_thinking, date))


# ---- parsing --------------------------------------------------------------------------------------

def _turns(text: str) -> list[tuple[str, str]]:
    if not text.startswith(BOS):
        raise LFM2FormatError(f"LFM2 text starts with {BOS}, got {text[:40]!r}")
    pos, turns = len(BOS), []
    while pos < len(text):
        if not text.startswith(IM_START, pos):
            raise LFM2FormatError(f"expected {IM_START} at character {pos}, got {text[pos:pos + 40]!r}")
        nl = text.find("\n", pos)
        end = text.find(IM_END, nl)
        if nl < 0 or end < 0:
            raise LFM2FormatError(f"unterminated turn at character {pos}: {text[pos:pos + 60]!r}")
        role = text[pos + len(IM_START):nl]
        turns.append((role, text[nl + 1:end]))
        pos = end + len(IM_END)
        if not text.startswith("\n", pos):
            raise LFM2FormatError(f"expected a newline after {IM_END} at character {pos}")
        pos += 1
    return turns


def _split_system(body: str, dialect: str) -> tuple[str, list[Any]]:
    marker = f"List of tools: {TOOL_LIST_START}[" if dialect == "lfm2" else "List of tools: ["
    at = body.rfind(marker)
    closing = f"]{TOOL_LIST_END}" if dialect == "lfm2" else "]"
    if at < 0 or not body.endswith(closing):
        return body, []
    try:
        tools = json.loads(body[at + len(marker) - 1:len(body) - len(closing) + 1])
    except json.JSONDecodeError as e:
        raise LFM2FormatError(f"the tool list in the system turn is not JSON: {e}") from None
    system = body[:at]
    if dialect == "lfm2.5-canonical":
        date = _DATE_LINE.search(system)
        if not date:
            raise LFM2FormatError("expected \"Today's date: YYYY-MM-DD\" and a blank line before the tool list")
        system = system[:date.start()]
        return (system[:-2] if system.endswith("\n\n") else system), tools
    if system:
        if not system.endswith("\n"):
            raise LFM2FormatError("expected a newline between the system prompt and the tool list")
        system = system[:-1]
    return system, tools


def parse_assistant(body: str, bare_calls: bool = False) -> Message:
    """One assistant turn's text -> Message(content, reasoning, tool_calls).

    With `bare_calls`, a body that is nothing but `[f(...)]` (the form some runtimes emit without the
    markers) is read as tool calls; use it for model output, not for rendered training data.
    """
    reasoning = None
    if body.startswith(THINK_OPEN) and THINK_CLOSE in body:
        close = body.index(THINK_CLOSE)
        reasoning, body = body[len(THINK_OPEN):close], body[close + len(THINK_CLOSE):]
    calls = []
    if body.endswith(TOOL_CALL_END) and TOOL_CALL_START in body:
        start = body.rindex(TOOL_CALL_START)
        calls, body = parse_tool_calls(body[start:]), body[:start]
    elif bare_calls and looks_like_call_list(body):
        calls, body = parse_tool_calls(body), ""
    return Message("assistant", body, reasoning=reasoning, tool_calls=calls)


def parse_conversation(text: str, dialect: str = "lfm2") -> tuple[list[Message], list[Any]]:
    """LFM2 text -> (messages, tools). Raises LFM2FormatError / ToolCallFormatError on malformed text."""
    if dialect not in PARSEABLE:
        raise ValueError(f"cannot parse the LFM2 dialect {dialect!r}; parseable: {', '.join(PARSEABLE)}")
    messages: list[Message] = []
    tools: list[Any] = []
    for i, (role, body) in enumerate(_turns(text)):
        if role == "system" and i == 0:
            system, tools = _split_system(body, dialect)
            if system:
                messages.append(Message("system", system))
        elif role == "assistant":
            try:
                messages.append(parse_assistant(body))
            except ToolCallFormatError as e:
                raise LFM2FormatError(f"turn {i}: {e}") from None
        elif role == "tool" and dialect == "lfm2":
            if not (body.startswith(TOOL_RESPONSE_START) and body.endswith(TOOL_RESPONSE_END)):
                raise LFM2FormatError(f"turn {i}: a tool turn is wrapped in {TOOL_RESPONSE_START}...")
            messages.append(Message("tool", body[len(TOOL_RESPONSE_START):-len(TOOL_RESPONSE_END)]))
        elif role in ("user", "tool", "system"):
            messages.append(Message(role, body))
        else:
            raise LFM2FormatError(f"turn {i}: unknown role {role!r}")
    return messages, tools


def lfm2_view(messages: Sequence[Any]) -> list[Message]:
    """What the LFM2 format carries of a conversation: no call ids, no name/id on tool results, an empty
    system turn dropped, empty reasoning as none. `parse_conversation(render(m)) == lfm2_view(m)`."""
    out = []
    for i, m in enumerate(as_messages(messages)):
        if i == 0 and m.role == "system" and not m.content:
            continue
        calls = [replace(c, id=None) for c in m.tool_calls]
        out.append(replace(m, reasoning=m.reasoning or None, tool_calls=calls, name=None, tool_call_id=None))
    return out
