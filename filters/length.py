"""Format checks that need no model: no empty turns, every turn within length bounds, a sane role order."""

from __future__ import annotations

from pydantic import Field

from filters.base import Filter
from pipelines.core.registry import register
from pipelines.core.sample import Sample, Verdict
from pipelines.core.step import Params


class LengthParams(Params):
    min_turns: int = Field(2, ge=1, description="fewest messages a conversation may have")
    min_chars: int = Field(1, ge=0, description="shortest allowed user/assistant message (characters)")
    max_chars: int = Field(8000, ge=1, description="longest allowed message (characters)")


@register("filter.length")
class LengthFilter(Filter):
    Params = LengthParams

    def keep(self, s: Sample) -> Verdict:
        p = self.params
        if len(s.messages) < p.min_turns:
            return self.verdict(False, "too_few_turns", details={"turns": len(s.messages)})
        for i, m in enumerate(s.messages):
            size = len(m.content) + len(m.reasoning or "")
            if m.role in ("user", "assistant") and size < p.min_chars and not m.tool_calls:
                return self.verdict(False, "empty_turn" if size == 0 else "turn_too_short", details={"turn": i})
            if size > p.max_chars:
                return self.verdict(False, "turn_too_long", details={"turn": i, "chars": size})
        first = next((m.role for m in s.messages if m.role != "system"), None)
        if first != "user":
            return self.verdict(False, "bad_role_order", details={"first_role": first})
        return self.verdict(True)
