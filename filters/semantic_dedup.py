"""Semantic dedup: drop a sample whose embedding is within a cosine threshold of an earlier kept sample.

Embeddings come from a sentence-transformers model (default: the packaged all-MiniLM-L6-v2, see
filters/embeddings.py); the search is SemDeDup-style k-means clustering with exact comparison inside
clusters (filters/semantic_core.py), so it scales past all-pairs. A split barrier: each input shard is
embedded on its own worker (keys), one task searches every embedding at once in input order (decide), and
each shard gets its verdicts back in parallel (apply).
Each verdict carries the sample's k-means cluster; a drop also names the kept sample and the cosine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from filters.base import Filter
from filters.embeddings import DEFAULT_MAX_TOKENS, EMBEDDER_HELP, PACKAGED, model_for
from filters.views import Scope, view
from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params


class SemanticDedupParams(Params):
    threshold: float = Field(0.9, gt=0.0, le=1.0, description="cosine similarity at or above which a sample is a duplicate")
    embedder: Literal["minilm", "static"] = Field("minilm", description=EMBEDDER_HELP)
    model: str = Field(PACKAGED, description=f"embedder minilm: {PACKAGED!r} (packaged) or a sentence-transformers folder")
    scope: Scope = Field("conversation", description="which rendering of the sample is embedded")
    max_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=8, le=512, description="tokens embedded per sample (its opening)")
    clusters: int | None = Field(None, ge=1, description="k-means clusters; default ceil(sqrt(n)), one cluster (exact) below 2,048 samples")
    probes: int = Field(2, ge=1, le=16, description="nearest clusters each sample is compared within")
    seed: int = Field(0, ge=0, description="k-means seed")


@register("filter.semantic_dedup")
class SemanticDedup(Filter):
    kind = "barrier"
    Params = SemanticDedupParams
    split = True
    helper_modules = ("filters.views", "filters.embeddings", "filters.semantic_core")

    def keys(self, samples: Iterator[Sample]) -> tuple[list[str], Any]:
        from filters.embeddings import Embedder

        p = self.params
        embedder = Embedder(model_for(p.embedder, p.model), p.max_tokens)
        ids = []
        for s in samples:
            ids.append(s.id)
            embedder.add(view(s, p.scope))
        # float16 on the way to decide: half the bytes its one task holds, and cosines at a dedup
        # threshold do not depend on the digits it drops (decide computes in float32).
        return ids, embedder.result().astype("float16")

    def decide(self, keys: list[tuple[list[str], Any]]) -> list[list[tuple[int, str | None, float]]]:
        """Per shard, per row: (k-means cluster, id of the kept sample it duplicates or None, cosine)."""
        import numpy as np

        from filters.embeddings import Embedder
        from filters.semantic_core import semantic_duplicates

        p = self.params
        ids = [i for shard_ids, _ in keys for i in shard_ids]
        parts = [emb for shard_ids, emb in keys if len(shard_ids)]
        emb = (np.concatenate(parts) if parts else Embedder(model_for(p.embedder, p.model), p.max_tokens).result())
        emb = emb.astype(np.float32)
        res = semantic_duplicates(emb, p.threshold, p.clusters, p.probes, p.seed)
        self.ctx.counters["semantic_clusters"] = res.k
        self.ctx.counters["semantic_pairs_over_threshold"] = res.pairs
        rows = [(int(res.cluster[i]), ids[j] if (j := int(res.duplicate_of[i])) >= 0 else None,
                 round(float(res.similarity[i]), 4)) for i in range(len(ids))]
        plans, at = [], 0
        for shard_ids, _ in keys:
            plans.append(rows[at:at + len(shard_ids)])
            at += len(shard_ids)
        return plans

    def apply(self, samples: Iterator[Sample], plan: list[tuple[int, str | None, float]]) -> Iterator[Sample]:
        for s, (cluster, kept, sim) in zip(samples, plan, strict=True):
            if kept is None:
                yield s.with_verdict(self.verdict(True, details={"cluster": cluster}))
            else:
                yield s.with_verdict(self.verdict(
                    False, "semantic_duplicate", score=sim, duplicate_of=kept,
                    details={"cluster": cluster, "cosine": sim,
                             "model": model_for(self.params.embedder, self.params.model)}))
