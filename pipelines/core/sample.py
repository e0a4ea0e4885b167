"""The one record type that flows through every step.

A `Sample` is a conversation plus everything needed to judge, review, export and trace it. Steps never
mutate a sample they received; they emit new ones with `dataclasses.replace` or the helpers below, so a
sample read from a shard is exactly what the upstream step wrote.

Serialisation is lossless: `to_dict`/`from_dict` round-trip through JSON, and `pipelines.core.shards`
round-trips through parquet. Open-ended payloads (tool-call arguments, tool schemas, persona, provenance)
are stored as canonical JSON strings in parquet, because Arrow needs one schema per column and tool
arguments differ per function.
"""

from __future__ import annotations

import hashlib
import json
import re

import orjson
from dataclasses import dataclass, field
from typing import Any, Literal

ROLES = ("system", "user", "assistant", "tool")
KINDS = ("seed", "chat", "reasoning", "tool_use", "preference")

Role = Literal["system", "user", "assistant", "tool"]


def canonical_json_bytes(value: Any) -> bytes:
    """UTF-8 JSON with sorted keys and no whitespace: equal values give equal bytes (and equal hashes).
    orjson: several times faster than the stdlib here, and this runs for every sample a step writes. It
    refuses integers beyond 64 bits, which a model can write (a runaway "1000000...0" argument or tool
    result); those values go through the stdlib instead (always, for a given value, so still canonical)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# orjson reads an integer beyond 64 bits as a float, silently; the stdlib keeps it exact. Such integers
# are rare (a model's runaway "1000...0"), and 19 digits in a row is the cheap sign of one.
_LONG_DIGITS = re.compile(r"\d{19}")


def loads_exact(text: str | bytes) -> Any:
    """JSON text to a value, integers of any size kept exact (the inverse of canonical_json_bytes)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return json.loads(text) if _LONG_DIGITS.search(text) else orjson.loads(text)


def canonical_json(value: Any) -> str:
    return canonical_json_bytes(value).decode("utf-8")


def content_hash(value: Any, length: int = 32) -> str:
    return hashlib.sha256(canonical_json_bytes(value)).hexdigest()[:length]


@dataclass(slots=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "arguments": self.arguments}
        if self.id is not None:
            d["id"] = self.id
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToolCall:
        _reject_unknown("tool call", d, {"name", "arguments", "id"})
        if not isinstance(d.get("arguments", {}), dict):
            raise ValueError(f"tool call {d.get('name')!r}: arguments must be an object, got {d['arguments']!r}")
        return cls(name=d["name"], arguments=dict(d.get("arguments") or {}), id=d.get("id"))


@dataclass(slots=True)
class Message:
    role: Role
    content: str = ""
    # The model's thinking, kept apart from the answer; renderers put it in <think>...</think>.
    reasoning: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    # For role == "tool": which call this result answers (name and optional id).
    name: str | None = None
    tool_call_id: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"message role must be one of {ROLES}, got {self.role!r}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.reasoning is not None:
            d["reasoning"] = self.reasoning
        if self.tool_calls:
            d["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.name is not None:
            d["name"] = self.name
        if self.tool_call_id is not None:
            d["tool_call_id"] = self.tool_call_id
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        _reject_unknown("message", d, {"role", "content", "reasoning", "tool_calls", "name", "tool_call_id"})
        return cls(
            role=d["role"],
            content=d.get("content") or "",
            reasoning=d.get("reasoning"),
            tool_calls=[ToolCall.from_dict(c) for c in d.get("tool_calls") or []],
            name=d.get("name"),
            tool_call_id=d.get("tool_call_id"),
        )


@dataclass(slots=True)
class Verdict:
    """One filter's decision about one sample. A sample whose last verdict has keep=False is dropped."""

    filter: str
    keep: bool
    reason: str = ""
    score: float | None = None
    # For dedup: the id of the sample that was kept instead of this one.
    duplicate_of: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "filter": self.filter,
            "keep": self.keep,
            "reason": self.reason,
            "score": self.score,
            "duplicate_of": self.duplicate_of,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        _reject_unknown("verdict", d, {"filter", "keep", "reason", "score", "duplicate_of", "details"})
        return cls(
            filter=d["filter"],
            keep=bool(d["keep"]),
            reason=d.get("reason") or "",
            score=d.get("score"),
            duplicate_of=d.get("duplicate_of"),
            details=dict(d.get("details") or {}),
        )


@dataclass(slots=True)
class Candidate:
    """An alternative assistant answer to the last user turn, kept for preference judging or ranking."""

    message: Message
    provenance: dict[str, Any] = field(default_factory=dict)
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message.to_dict(), "provenance": self.provenance, "score": self.score}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        _reject_unknown("candidate", d, {"message", "provenance", "score"})
        return cls(Message.from_dict(d["message"]), dict(d.get("provenance") or {}), d.get("score"))


@dataclass(slots=True)
class Sample:
    kind: str = "seed"
    messages: list[Message] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    persona: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    # Task material that is not part of the conversation: a seed question, a reference answer, a source
    # passage. Part of the id only for samples that have no conversation yet (sources).
    meta: dict[str, Any] = field(default_factory=dict)
    # The id when it is already known, so it is hashed once per sample, not once per step: set by
    # `shards.from_row` (the id written next to the content it hashes, under the shard's sha256) and carried
    # by `with_verdict` (verdicts are not part of it). Never cached from a computation: a sample built in
    # code may still change before it is written. `replace()` starts without it.
    _known_id: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"sample kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def id(self) -> str:
        """Content hash: the same conversation (with the same tools) has the same id in every run."""
        if self._known_id is not None:
            return self._known_id
        if self.messages:
            content: dict[str, Any] = {
                "kind": self.kind,
                "messages": [m.to_dict() for m in self.messages],
                "tools": self.tools,
            }
        else:
            # Seeds (a persona, a task) have no conversation yet; their identity is what they carry.
            content = {"kind": self.kind, "persona": self.persona, "meta": self.meta}
        return content_hash(content)

    @property
    def dropped(self) -> bool:
        return bool(self.verdicts) and not self.verdicts[-1].keep

    def with_verdict(self, verdict: Verdict) -> Sample:
        # Positional construction, not dataclasses.replace: filters call this once per sample, and replace()
        # introspects the fields on every call (a quarter of exact dedup's time).
        out = Sample(self.kind, self.messages, self.tools, self.candidates, self.persona, self.provenance,
                     [*self.verdicts, verdict], self.meta)
        out._known_id = self._known_id
        return out

    def text(self) -> str:
        """A plain rendering of the conversation for hashing, dedup and display."""
        # The plain case inline: dedup renders every sample, and most turns have no reasoning or calls.
        return "\n".join([f"{m.role}: {m.content}" if not (m.reasoning or m.tool_calls) else _render_full(m)
                          for m in self.messages])

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "messages": [m.to_dict() for m in self.messages],
            "tools": self.tools,
            "candidates": [c.to_dict() for c in self.candidates],
            "persona": self.persona,
            "provenance": self.provenance,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sample:
        _reject_unknown(
            "sample", d, {"id", "kind", "messages", "tools", "candidates", "persona", "provenance", "verdicts", "meta"}
        )
        sample = cls(
            kind=d.get("kind", "seed"),
            messages=[Message.from_dict(m) for m in d.get("messages") or []],
            tools=list(d.get("tools") or []),
            candidates=[Candidate.from_dict(c) for c in d.get("candidates") or []],
            persona=d.get("persona"),
            provenance=dict(d.get("provenance") or {}),
            verdicts=[Verdict.from_dict(v) for v in d.get("verdicts") or []],
            meta=dict(d.get("meta") or {}),
        )
        if "id" in d and d["id"] != sample.id:
            raise ValueError(f"sample id {d['id']} does not match its content (hash {sample.id}): edited by hand?")
        return sample

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Sample:
        return cls.from_dict(json.loads(text))


def _reject_unknown(what: str, d: dict[str, Any], known: set[str]) -> None:
    if not isinstance(d, dict):
        raise ValueError(f"{what} must be an object, got {type(d).__name__}")
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"{what} has unknown keys {sorted(unknown)}; known: {sorted(known)}")


def _render_full(m: Message) -> str:
    body = m.content
    if m.reasoning:
        body = f"<think>{m.reasoning}</think>{body}"
    if m.tool_calls:
        body += " " + canonical_json([c.to_dict() for c in m.tool_calls])
    return f"{m.role}: {body}"
