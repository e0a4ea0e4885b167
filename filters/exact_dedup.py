"""Exact dedup: drop a sample whose normalised conversation text was already seen.

A barrier step: it must see the whole input to know what came first. It keeps one 16-byte digest per
distinct text and the kept id (about 150 MB for a million distinct samples, dict overhead included), never the samples themselves.
The first occurrence in input order is kept, so the result does not depend on worker scheduling.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

import xxhash

from filters.base import Filter
from filters.normalize import normalize_text
from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params


class ExactDedupParams(Params):
    scope: Literal["conversation", "user_turns", "first_user_turn"] = Field(
        "conversation", description="what text is compared: the whole conversation or only the user side"
    )


@register("filter.exact_dedup")
class ExactDedup(Filter):
    kind = "barrier"
    Params = ExactDedupParams

    def _text(self, s: Sample) -> str:
        if self.params.scope == "conversation":
            return s.text()
        users = [m.content for m in s.messages if m.role == "user"]
        return "\n".join(users[:1] if self.params.scope == "first_user_turn" else users)

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        seen: dict[bytes, bytes] = {}
        for s in samples:
            digest = xxhash.xxh3_128_digest(normalize_text(self._text(s)).encode("utf-8"))
            first = seen.get(digest)
            if first is None:
                seen[digest] = bytes.fromhex(s.id)
                yield s.with_verdict(self.verdict(True))
            else:
                yield s.with_verdict(self.verdict(False, "exact_duplicate", duplicate_of=first.hex()))
