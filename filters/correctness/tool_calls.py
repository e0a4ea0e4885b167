"""Tool-call correctness: every call names a tool the sample offered, its arguments validate against
that tool's JSON schema (required, types, enums, no undeclared arguments), no call is left as unparsed
text in a message, tool results follow calls, and the conversation survives LFM2 rendering: rendered with
`pipelines.formats.lfm2.render` and parsed back with `parse_conversation`, it is what it was.

Reasons, checked in this order: bad_tool_schema, malformed_call_text, unstructured_call_text,
unknown_function, unknown_argument, missing_required, wrong_type, enum_violation, schema_violation,
orphan_tool_result, no_tool_call, lfm2_roundtrip_failed. Details carry the message index, the call, and
every problem found, not only the first.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from filters.base import Filter
from filters.correctness.schemas import offered_tools
from pipelines.core.registry import register
from pipelines.core.sample import Sample, Verdict
from pipelines.core.step import Params

_CALL_MARKERS = ("<|tool_call_start|>", "<|tool_call_end|>")
# A message that opens like a bare call list, `[name(...`: the form some runtimes emit without markers.
_BARE_CALL = re.compile(r"^\s*\[\s*[A-Za-z_][\w.]*\s*\(")


class ToolCallsParams(Params):
    closed_objects: bool = Field(
        True, description="arguments a schema does not declare are errors, unless it sets additionalProperties")
    require_call: bool = Field(False, description="a tool_use sample without any call is dropped")
    lfm2_roundtrip: bool = Field(True, description="render the conversation as LFM2 text and parse it back")
    dialect: Literal["lfm2"] = Field("lfm2", description="LFM2 dialect for the round trip (lfm2.5 is lossy by design)")


def _lfm2():
    try:
        from pipelines.formats import lfm2
    except ImportError as e:
        raise RuntimeError(
            "filter.tool_calls with lfm2_roundtrip: true needs pipelines.formats.lfm2 (LFM2 render/parse), "
            f"which could not be imported ({e}); set lfm2_roundtrip: false to skip this check") from e
    return lfm2


@register("filter.tool_calls")
class ToolCalls(Filter):
    Params = ToolCallsParams
    helper_modules = ("filters.correctness.schemas",)

    def keep(self, s: Sample) -> Verdict:
        from pipelines.tools.schema import ToolSchemaError

        try:
            offered = offered_tools(s.tools, self.params.closed_objects)
        except ToolSchemaError as e:
            return self.verdict(False, "bad_tool_schema", details={"error": str(e)})
        problems: list[dict[str, Any]] = []
        calls_seen = 0
        prev_calls: list[str] = []
        for i, m in enumerate(s.messages):
            if m.role == "assistant":
                problems += self._call_text(i, m.content)
                for c in m.tool_calls:
                    calls_seen += 1
                    problems += self._check_call(i, c.name, c.arguments, offered)
                prev_calls = [c.name for c in m.tool_calls]
            elif m.role == "tool":
                if not prev_calls:
                    problems.append({"reason": "orphan_tool_result", "message": i,
                                     "error": "a tool result with no tool call before it"})
            elif m.role == "user":
                prev_calls = []
        if not problems and self.params.require_call and s.kind == "tool_use" and calls_seen == 0:
            problems.append({"reason": "no_tool_call", "error": "a tool_use sample with no tool call"})
        if not problems and self.params.lfm2_roundtrip and s.messages:
            problems += self._roundtrip(s)
        if problems:
            return self.verdict(False, problems[0]["reason"], details={"problems": problems[:20]})
        return self.verdict(True, details={"calls": calls_seen})

    def _call_text(self, i: int, content: str) -> list[dict[str, Any]]:
        """A call written into the message text instead of `tool_calls`: malformed, or merely unstructured."""
        if not (any(mk in content for mk in _CALL_MARKERS) or _BARE_CALL.match(content)):
            return []
        from pipelines.formats.pythonic_calls import ToolCallFormatError, parse_tool_calls

        text = content
        if _CALL_MARKERS[0] in content:
            text = content[content.index(_CALL_MARKERS[0]):]
        try:
            parse_tool_calls(text)
        except ToolCallFormatError as e:
            return [{"reason": "malformed_call_text", "message": i, "error": str(e), "text": content[:300]}]
        return [{"reason": "unstructured_call_text", "message": i, "text": content[:300],
                 "error": "a well-formed call list in the message text; it belongs in tool_calls"}]

    def _check_call(self, i: int, name: str, arguments: dict[str, Any], offered: dict) -> list[dict[str, Any]]:
        from filters.correctness.schemas import argument_errors

        call = {"name": name, "arguments": arguments}
        if name not in offered:
            return [{"reason": "unknown_function", "message": i, "call": call,
                     "error": f"{name!r} is not one of the offered tools {sorted(offered)}"}]
        return [{"reason": r, "message": i, "call": call, "error": msg}
                for r, msg in argument_errors(offered[name], arguments)]

    def _roundtrip(self, s: Sample) -> list[dict[str, Any]]:
        lfm2 = _lfm2()
        from pipelines.formats.pythonic_calls import ToolCallFormatError

        try:
            text = lfm2.render(s.messages, s.tools or None, dialect=self.params.dialect)
            messages, tools = lfm2.parse_conversation(text, dialect=self.params.dialect)
        except (lfm2.LFM2FormatError, ToolCallFormatError) as e:
            return [{"reason": "lfm2_roundtrip_failed", "error": str(e)}]
        expected = lfm2.lfm2_view(s.messages)
        if list(tools) != list(s.tools or []):
            return [{"reason": "lfm2_roundtrip_failed", "error": "the tools parsed back differ from the offered tools"}]
        for j in range(max(len(messages), len(expected))):
            got = messages[j] if j < len(messages) else None
            want = expected[j] if j < len(expected) else None
            if got != want:
                return [{"reason": "lfm2_roundtrip_failed", "message": j,
                         "error": "the message parsed back from the LFM2 rendering differs from the original",
                         "parsed": got.to_dict() if got else None}]
        return []
