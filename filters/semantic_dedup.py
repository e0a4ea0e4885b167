"""Semantic dedup: drop a sample whose embedding is within a cosine threshold of an earlier kept sample.

Embeddings come from a sentence-transformers model (default: the packaged all-MiniLM-L6-v2, see
filters/embeddings.py); the search is SemDeDup-style k-means clustering with exact comparison inside
clusters (filters/semantic_core.py), so it scales past all-pairs. A barrier step: it reads every sample once
(spilling them to a private temporary file while it embeds), decides, then yields them in input order.
Each verdict carries the sample's k-means cluster; a drop also names the kept sample and the cosine.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from filters.base import Filter
from filters.embeddings import DEFAULT_MAX_TOKENS, PACKAGED
from filters.spill import Spill
from filters.views import Scope, view
from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params


class SemanticDedupParams(Params):
    threshold: float = Field(0.9, gt=0.0, le=1.0, description="cosine similarity at or above which a sample is a duplicate")
    model: str = Field(PACKAGED, description=f"sentence-transformers model: {PACKAGED!r} (packaged) or a local folder")
    scope: Scope = Field("conversation", description="which rendering of the sample is embedded")
    max_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=8, le=512, description="tokens embedded per sample (its opening)")
    clusters: int | None = Field(None, ge=1, description="k-means clusters; default ceil(sqrt(n)), one cluster (exact) below 2,048 samples")
    probes: int = Field(2, ge=1, le=16, description="nearest clusters each sample is compared within")
    seed: int = Field(0, ge=0, description="k-means seed")


@register("filter.semantic_dedup")
class SemanticDedup(Filter):
    kind = "barrier"
    Params = SemanticDedupParams
    helper_modules = ("filters.views", "filters.embeddings", "filters.semantic_core", "filters.spill")

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        from filters.embeddings import Embedder
        from filters.semantic_core import semantic_duplicates

        p = self.params
        embedder = Embedder(p.model, p.max_tokens)
        ids = []
        with Spill(self.ctx.run_dir / "tmp") as spill:
            for s in samples:
                spill.add(s)
                ids.append(s.id)
                embedder.add(view(s, p.scope))
            emb = embedder.result()
            res = semantic_duplicates(emb, p.threshold, p.clusters, p.probes, p.seed)
            self.ctx.counters["semantic_clusters"] = res.k
            self.ctx.counters["semantic_pairs_over_threshold"] = res.pairs
            for i, s in enumerate(spill):
                cluster = int(res.cluster[i])
                j = int(res.duplicate_of[i])
                if j < 0:
                    yield s.with_verdict(self.verdict(True, details={"cluster": cluster}))
                    continue
                sim = round(float(res.similarity[i]), 4)
                yield s.with_verdict(self.verdict(
                    False, "semantic_duplicate", score=sim, duplicate_of=ids[j],
                    details={"cluster": cluster, "cosine": sim, "model": p.model}))
