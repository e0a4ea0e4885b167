"""Near-duplicate dedup: MinHash + LSH finds candidate pairs, and each candidate is confirmed against the
Jaccard threshold before anything is dropped.

Library: rensa (Rust MinHash and LSH). Measured on this project's data (bench/dedup.py), it computes
signatures ~50x faster than datasketch (whose MinHash is per-document numpy), and unlike datatrove's
four-stage, file-based MinHash pipeline it runs inside one streaming step, so the first occurrence in input
order is kept and every drop can name the sample it duplicates. datasketch and datatrove are the
comparison points in the benchmark.

How it decides, for each sample in input order:
1. shingle the chosen rendering (`scope`) into word (or character) n-grams of the normalised text;
2. MinHash signature, LSH query against the samples kept so far;
3. confirm each candidate: `verify: jaccard` computes the exact Jaccard of the two shingle sets (kept as
   sorted 64-bit shingle hashes), `verify: minhash` uses the signature estimate (less memory, noisier
   near the threshold);
4. a confirmed match drops the sample with `duplicate_of` = the most similar kept sample; otherwise the
   sample is kept and indexed.

LSH bands are chosen so that a pair exactly at the threshold becomes a candidate with probability >= 0.995
(the verification step removes the extra candidates this lets in); `bands` overrides it.
Memory: `verify: jaccard` keeps each kept sample's shingle hashes (8 bytes per distinct shingle, ~2.5 KB
for a 300-word conversation); `verify: minhash` keeps only its signature (4 bytes x num_perm).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field, model_validator

from filters.base import Filter
from filters.normalize import shingles
from filters.views import Scope, view
from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params

_BATCH = 2048  # samples shingled and hashed together (rensa's batch calls amortise the Python overhead)
_RECALL_AT_THRESHOLD = 0.995


class NearDedupParams(Params):
    threshold: float = Field(0.8, gt=0.0, le=1.0, description="Jaccard similarity at or above which a sample is a duplicate")
    scope: Scope = Field("conversation", description="which rendering of the sample is compared")
    unit: Literal["word", "char"] = Field("word", description="shingle unit: word n-grams or character n-grams")
    ngram: int = Field(3, ge=1, le=32, description="shingle length in units")
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash permutations")
    bands: int | None = Field(None, ge=1, description="LSH bands (must divide num_perm); default: chosen for the threshold")
    verify: Literal["jaccard", "minhash"] = Field(
        "jaccard", description="confirm candidates with the exact Jaccard of the shingle sets, or the MinHash estimate")
    seed: int = Field(42, ge=0, description="MinHash seed")

    @model_validator(mode="after")
    def _bands_divide(self) -> NearDedupParams:
        if self.bands is not None and self.num_perm % self.bands:
            raise ValueError(f"bands ({self.bands}) must divide num_perm ({self.num_perm})")
        return self


def lsh_bands(threshold: float, num_perm: int, recall: float = _RECALL_AT_THRESHOLD) -> int:
    """Fewest bands (longest rows, fewest spurious candidates) such that a pair with Jaccard == threshold
    shares a band with probability >= recall: P = 1 - (1 - t^r)^b with r = num_perm / b."""
    divisors = [b for b in range(1, num_perm + 1) if num_perm % b == 0]
    for b in divisors:
        r = num_perm // b
        if 1.0 - (1.0 - threshold ** r) ** b >= recall:
            return b
    return divisors[-1]


class NearDupIndex:
    """The state of a near-dup pass: an LSH index over kept samples plus what verification needs.
    Used by the step and by bench/dedup.py, so the benchmark measures exactly the step's algorithm."""

    def __init__(self, p: NearDedupParams) -> None:
        from rensa import RMinHashLSH

        self.p = p
        self.bands = p.bands or lsh_bands(p.threshold, p.num_perm)
        self.lsh = RMinHashLSH(p.threshold, p.num_perm, self.bands)
        self.kept_ids: list = []
        self.kept_sets: list = []  # sorted uint64 shingle hashes (verify: jaccard) or RMinHash (minhash)
        self.candidates_checked = 0

    def add_batch(self, texts: list[str], ids: list) -> list[tuple[object, float] | None]:
        """For each text in order: (id of the kept text it duplicates, similarity), or None if it is kept.
        Kept texts are indexed as they come, so later texts in the same batch see earlier ones."""
        import numpy as np
        from rensa import RMinHash

        p = self.p
        tokens = [list(shingles(t, p.ngram, p.unit)) for t in texts]
        minhashes = RMinHash.from_token_sets(tokens, p.num_perm, p.seed)
        # 64-bit hashes of each doc's distinct shingles (rensa's hash, in Rust): distinct shingles collide
        # with probability ~2^-64, so the Jaccard of these sorted arrays is the Jaccard of the shingle sets.
        hashed = RMinHash.hash_token_sets(tokens) if p.verify == "jaccard" else None
        out: list[tuple[object, float] | None] = []
        for i, mh in enumerate(minhashes):
            mine = np.sort(np.asarray(hashed[i], dtype=np.uint64)) if hashed is not None else mh
            best, best_sim = -1, -1.0
            for key in self.lsh.query(mh):
                self.candidates_checked += 1
                sim = self._similarity(mine, self.kept_sets[key])
                if sim >= p.threshold and (sim > best_sim or (sim == best_sim and key < best)):
                    best, best_sim = key, sim
            if best >= 0:
                out.append((self.kept_ids[best], best_sim))
                continue
            self.lsh.insert(len(self.kept_sets), mh)
            self.kept_sets.append(mine)
            self.kept_ids.append(ids[i])
            out.append(None)
        return out

    def _similarity(self, a, b) -> float:
        if self.p.verify == "minhash":
            return float(a.jaccard(b))
        import numpy as np

        inter = np.intersect1d(a, b, assume_unique=True).size
        return inter / (a.size + b.size - inter)


@register("filter.near_dedup")
class NearDedup(Filter):
    kind = "barrier"
    Params = NearDedupParams
    helper_modules = ("filters.normalize", "filters.views")

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        index = NearDupIndex(self.params)
        batch: list[Sample] = []
        for s in samples:
            batch.append(s)
            if len(batch) >= _BATCH:
                yield from self._decide(batch, index)
                batch = []
        yield from self._decide(batch, index)
        self.ctx.counters["near_dedup_candidates_checked"] += index.candidates_checked
        self.ctx.counters["near_dedup_lsh_bands"] = index.bands

    def _decide(self, batch: list[Sample], index: NearDupIndex) -> Iterator[Sample]:
        if not batch:
            return
        ids = [s.id for s in batch]
        results = index.add_batch([view(s, self.params.scope) for s in batch], ids)
        method = self.params.verify
        for s, sid, res in zip(batch, ids, results):
            if res is None:
                yield s.with_verdict(self.verdict(True, details={"cluster": sid}))
                continue
            kept = res[0]
            yield s.with_verdict(self.verdict(
                False, "near_duplicate", score=round(res[1], 4), duplicate_of=kept,
                details={"cluster": kept, "jaccard": round(res[1], 4), "method": method}))
