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
    Params = ExactDedupParams
    helper_modules = ("filters.normalize", "filters.views")

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        seen: dict[bytes, bytes] = {}
        scope = self.params.scope
        hash_ = xxhash.xxh3_128_digest
        # Normalised a chunk at a time (normalized_batch), which is where most of the time went.
        while chunk := list(islice(samples, _CHUNK)):
            for s, text in zip(chunk, normalized_batch([view(s, scope) for s in chunk])):
                digest = hash_(text)
                first = seen.get(digest)
                if first is None:
                    seen[digest] = bytes.fromhex(s.id)
                    yield s.with_verdict(self.verdict(True))
                else:
                    kept = first.hex()
                    yield s.with_verdict(self.verdict(False, "exact_duplicate", duplicate_of=kept,
                                                      details={"cluster": kept}))
