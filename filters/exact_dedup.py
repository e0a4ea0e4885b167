"""Exact dedup: drop a sample whose normalised text (NFKC, case, punctuation, spacing) was already seen.

A barrier step: it must see the whole input to know what came first. It keeps one 16-byte digest per
distinct text and the kept id (about 150 MB for a million distinct samples, dict overhead included), never
the samples themselves. The first occurrence in input order is kept, so the result does not depend on
worker scheduling. A drop names the kept sample in `duplicate_of` and in `details.cluster`.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

import xxhash
from pydantic import Field

from filters.base import Filter
from filters.normalize import normalized_batch
from filters.views import Scope, view
from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params


_CHUNK = 2048


class ExactDedupParams(Params):
    scope: Scope = Field(
        "conversation", description="what text is compared: the whole conversation, or one side of it"
    )


@register("filter.exact_dedup")
class ExactDedup(Filter):
    kind = "barrier"
    split = True  # digests per shard in parallel; only the first-seen decision sees every shard
    Params = ExactDedupParams
    helper_modules = ("filters.normalize", "filters.views")

    def keys(self, samples: Iterator[Sample]) -> tuple[bytes, bytes]:
        """(digests, ids): 16 bytes each per sample, concatenated in shard order."""
        digests, ids = bytearray(), bytearray()
        hash_ = xxhash.xxh3_128_digest
        scope = self.params.scope
        # Normalised a chunk at a time (normalized_batch), which is where most of the time went.
        while chunk := list(islice(samples, _CHUNK)):
            for s, text in zip(chunk, normalized_batch([view(s, scope) for s in chunk])):
                digests += hash_(text)
                ids += bytes.fromhex(s.id)
        return bytes(digests), bytes(ids)

    def decide(self, keys: list[tuple[bytes, bytes]]) -> list[dict[int, str]]:
        """Per shard: row -> the id of the first sample (in input order) with the same text."""
        seen: dict[bytes, bytes] = {}
        plans = []
        for digests, ids in keys:
            plan = {}
            for row, at in enumerate(range(0, len(digests), 16)):
                digest = digests[at:at + 16]
                first = seen.get(digest)
                if first is None:
                    seen[digest] = ids[at:at + 16]
                else:
                    plan[row] = first.hex()
            plans.append(plan)
        return plans

    def apply(self, samples: Iterator[Sample], plan: dict[int, str]) -> Iterator[Sample]:
        for row, s in enumerate(samples):
            kept = plan.get(row)
            if kept is None:
                yield s.with_verdict(self.verdict(True))
            else:
                yield s.with_verdict(self.verdict(False, "exact_duplicate", duplicate_of=kept,
                                                  details={"cluster": kept}))
