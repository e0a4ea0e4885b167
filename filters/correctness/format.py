"""Conversation format: role order, no empty turns, length bounds, reasoning before the answer where the
sample's kind requires it, no runaway repetition, and the expected language.

Checks run in this order and the first failure is the verdict's reason:
  bad_role_order     system only first; the first other turn is a user turn; user and assistant alternate,
                     tool results only right after an assistant turn with calls (or another tool result);
                     the last turn is the assistant's (end_with_assistant)
  empty_turn         a user or assistant turn with no text (an assistant turn with tool calls may be empty)
  missing_answer     an assistant turn with reasoning but no answer after it
  turn_too_short / turn_too_long / too_long    per-turn and whole-conversation character bounds
  missing_reasoning / think_tag_in_content
                     for kinds in reasoning_kinds, every assistant turn has its reasoning (kept apart from
                     the answer, i.e. before it), and no <think> tag leaked into the answer
  repetitive         an assistant turn whose word 3-grams repeat more than max_repetition of the time
  wrong_language     user and assistant text is not in `language` (checked on texts of min_language_chars+)
"""

from __future__ import annotations

from pydantic import Field

from filters.base import Filter
from filters.normalize import words
from pipelines.core.registry import register
from pipelines.core.sample import Message, Sample, Verdict
from pipelines.core.step import Params

_THINK_TAGS = ("<think>", "</think>")


class FormatParams(Params):
    end_with_assistant: bool = Field(True, description="the last turn must be the assistant's")
    min_chars: int = Field(1, ge=0, description="shortest user/assistant turn (characters)")
    max_turn_chars: int = Field(8000, ge=1, description="longest single turn (characters, reasoning included)")
    max_total_chars: int = Field(32000, ge=1, description="longest conversation (characters)")
    reasoning_kinds: list[str] = Field(["reasoning"], description="kinds whose assistant turns must carry reasoning")
    max_repetition: float = Field(
        0.5, gt=0.0, le=1.0, description="highest share of repeated word 3-grams in an assistant turn")
    min_repetition_words: int = Field(30, ge=3, description="turns shorter than this are not checked for repetition")
    language: str | None = Field("en", description="expected language (ISO 639-1), or null to skip the check")
    min_language_chars: int = Field(40, ge=1, description="texts shorter than this are too short to identify")
    min_language_prob: float = Field(0.5, ge=0.0, le=1.0, description="a detection below this is not trusted")


def repetition(text: str) -> float:
    """Share of word 3-grams that repeat an earlier one (0: none repeats; close to 1: a loop)."""
    w = words(text)
    grams = list(zip(w, w[1:], w[2:]))
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def role_order_problem(messages: list[Message], end_with_assistant: bool) -> str | None:
    roles = [m.role for m in messages]
    if not roles:
        return "no messages"
    if "system" in roles[1:]:
        return f"a system turn at position {roles.index('system', 1)}; only the first turn may be system"
    body = roles[1:] if roles[0] == "system" else roles
    if not body or body[0] != "user":
        return f"the first turn after the system prompt is {body[0] if body else 'missing'}, not user"
    prev: Message | None = None
    for i, m in enumerate(messages):
        if m.role == "system":
            continue
        if prev is not None:
            if m.role == "tool" and not (prev.role == "tool" or (prev.role == "assistant" and prev.tool_calls)):
                return f"turn {i}: a tool result must follow an assistant turn with calls"
            if m.role == prev.role and m.role in ("user", "assistant"):
                return f"turn {i}: two {m.role} turns in a row"
            if prev.role == "assistant" and prev.tool_calls and m.role != "tool":
                return f"turn {i}: an assistant turn with calls must be followed by their results"
            if m.role == "assistant" and prev.role not in ("user", "tool"):
                return f"turn {i}: an assistant turn must answer a user turn or tool results"
        prev = m
    if end_with_assistant and messages[-1].role != "assistant":
        return f"the conversation ends with a {messages[-1].role} turn"
    return None


@register("filter.format")
class Format(Filter):
    Params = FormatParams
    helper_modules = ("filters.normalize", "filters.correctness.language")

    def keep(self, s: Sample) -> Verdict:
        p = self.params
        problem = role_order_problem(s.messages, p.end_with_assistant)
        if problem:
            return self.verdict(False, "bad_role_order", details={"error": problem, "roles": [m.role for m in s.messages]})
        total = 0
        for i, m in enumerate(s.messages):
            size = len(m.content) + len(m.reasoning or "")
            total += size
            if m.role in ("user", "assistant") and not m.tool_calls:
                chars = len(m.content.strip())
                if chars == 0:
                    reason = "missing_answer" if m.role == "assistant" and m.reasoning else "empty_turn"
                    return self.verdict(False, reason, details={"turn": i, "role": m.role})
                if chars < p.min_chars:
                    return self.verdict(False, "turn_too_short", details={"turn": i, "chars": chars})
            if size > p.max_turn_chars:
                return self.verdict(False, "turn_too_long", details={"turn": i, "chars": size})
        if total > p.max_total_chars:
            return self.verdict(False, "too_long", details={"chars": total})
        if s.kind in p.reasoning_kinds:
            for i, m in enumerate(s.messages):
                if m.role != "assistant":
                    continue
                if any(t in m.content for t in _THINK_TAGS):
                    return self.verdict(False, "think_tag_in_content", details={"turn": i})
                if not (m.reasoning or "").strip():
                    return self.verdict(False, "missing_reasoning", details={"turn": i})
        for i, m in enumerate(s.messages):
            if m.role == "assistant":
                text = f"{m.reasoning or ''}\n{m.content}"
                if len(words(text)) >= p.min_repetition_words:
                    rep = repetition(text)
                    if rep > p.max_repetition:
                        return self.verdict(False, "repetitive", score=round(rep, 3),
                                            details={"turn": i, "repeated_trigram_share": round(rep, 3)})
        if p.language:
            return self._language(s)
        return self.verdict(True)

    def _language(self, s: Sample) -> Verdict:
        from filters.correctness.language import detect

        p = self.params
        text = "\n".join(m.content for m in s.messages if m.role in ("user", "assistant"))
        if len(text) < p.min_language_chars:
            return self.verdict(True, details={"language": None})
        lang, prob = detect(text)
        if lang != p.language and prob >= p.min_language_prob:
            return self.verdict(False, "wrong_language", score=round(prob, 3),
                                details={"language": lang, "probability": round(prob, 3), "expected": p.language})
        return self.verdict(True, details={"language": lang, "probability": round(prob, 3)})
