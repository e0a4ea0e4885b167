"""Split raw LFM2 output into answer, reasoning and tool calls (backends with `output_parser: lfm2`).

The format itself is defined once, in `pipelines.formats.lfm2` (render and parse, round-trip tested);
this module only adapts raw generated text to it: it drops end-of-turn markers that appear when special
tokens are kept in the decoded text, accepts the bare `[name(...)]` form some runtimes emit (only when the
request offered tools), and turns malformed calls into a per-request ToolCallError that keeps the raw text.
"""

from __future__ import annotations

from typing import Any

from pipelines.llm.errors import ToolCallError

_TRAILERS = ("<|im_end|>", "<|endoftext|>")


def parse_pythonic_calls(source: str) -> list[dict[str, Any]]:
    """'[f(a=1), g(b="x")]' (markers optional) -> [{'name': 'f', 'arguments': {'a': 1}}, ...]."""
    from pipelines.formats.pythonic_calls import ToolCallFormatError, parse_tool_calls

    try:
        return [{"name": c.name, "arguments": c.arguments} for c in parse_tool_calls(source)]
    except ToolCallFormatError as exc:
        raise ToolCallError(source, f"unparseable tool call: {exc}") from None


def split_output(text: str, tools_offered: bool) -> tuple[str, str | None, list[dict[str, Any]] | None]:
    """(answer, reasoning or None, tool calls or None) from one raw LFM2 completion."""
    from pipelines.formats.lfm2 import LFM2FormatError, parse_assistant
    from pipelines.formats.pythonic_calls import TOOL_CALL_START, ToolCallFormatError

    raw = text
    for marker in _TRAILERS:
        text = text.replace(marker, "")
    text = text.strip()
    try:
        message = parse_assistant(text, bare_calls=tools_offered)
    except (ToolCallFormatError, LFM2FormatError) as exc:
        raise ToolCallError(raw, f"unparseable tool call: {exc}") from None
    if TOOL_CALL_START in message.content:
        raise ToolCallError(raw, "a tool call that is never closed or is not at the end of the turn")
    calls = [{"name": c.name, "arguments": c.arguments} for c in message.tool_calls]
    reasoning = message.reasoning.strip() if message.reasoning is not None else None
    return message.content.strip(), reasoning, calls or None
