"""Diversity: a report step (metrics per run and per group, never drops anything) and a selection step
that keeps the N most diverse samples and records, for every other one, why it was not selected.

Metrics are defined in filters/diversity_metrics.py. Selection works on the same unit embeddings:
- k_center: k-center greedy (Sener & Savarese, 2018): start from the sample nearest the mean, then
  repeatedly take the sample farthest (cosine distance) from everything selected so far. It maximises
  coverage: every unselected sample ends up close to a selected one, and its verdict says which.
- mmr: maximal marginal relevance: each pick maximises lambda * quality - (1 - lambda) * (max cosine to
  the selected set), with quality the score an earlier step gave the sample (e.g. a judge), min-max scaled.
Both are O(N x n x d) with n inputs and N selected: fine for tens of thousands of inputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field, field_validator

from filters.base import Filter
from filters.embeddings import DEFAULT_MAX_TOKENS, EMBEDDER_HELP, PACKAGED, model_for
from filters.spill import Spill
from filters.views import Scope, check_group_key, group_value, view
from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params
from pipelines.core.store import StepDir
from pipelines.core.shards import write_json_atomic

REPORT_FILE = "diversity.json"


class DiversityReportParams(Params):
    group_by: list[str] = Field(
        ["kind", "generator"], description="group keys: kind, generator, persona.ATTR, provenance.KEY, meta.KEY")
    embedder: Literal["minilm", "static"] = Field("minilm", description=EMBEDDER_HELP)
    model: str = Field(PACKAGED, description=f"embedder minilm: {PACKAGED!r} (packaged) or a sentence-transformers folder")
    scope: Scope = Field("conversation", description="which rendering of each sample is measured")
    max_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=8, le=512, description="tokens embedded per sample (its opening)")
    clusters: int = Field(20, ge=1, description="k-means clusters (topics) for coverage and balance")
    seed: int = Field(0, ge=0)

    @field_validator("group_by")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        return [check_group_key(k) for k in keys]


@register("filter.diversity_report")
class DiversityReport(Filter):
    """Passes every sample on unchanged and writes diversity.json into the step's folder."""

    kind = "barrier"
    Params = DiversityReportParams
    helper_modules = ("filters.views", "filters.embeddings", "filters.diversity_metrics", "filters.normalize")

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        from filters.diversity_metrics import diversity_report
        from filters.embeddings import embed_texts

        p = self.params
        groups: dict[str, list[str]] = {key: [] for key in p.group_by}
        texts: list[str] = []
        for s in samples:
            # Only texts and group values are kept; the samples themselves pass straight through.
            for key, values in groups.items():
                values.append(group_value(s, key))
            texts.append(view(s, p.scope))
            yield s
        emb = embed_texts(model_for(p.embedder, p.model), texts, p.max_tokens)
        report = diversity_report(texts, emb, groups, p.clusters, p.seed)
        report.update({"model": model_for(p.embedder, p.model), "scope": p.scope, "step": self.ctx.step_name})
        root = StepDir.of(self.ctx.run_dir, self.ctx.step_name, self.ctx.fingerprint).root
        write_json_atomic(root / REPORT_FILE, report)
        self.ctx.counters["diversity_vendi_x100"] = int(round(report["overall"]["vendi"] * 100))


class DiversitySelectParams(Params):
    n: int = Field(ge=1, description="how many samples to keep")
    method: Literal["k_center", "mmr"] = Field("k_center", description="k-center greedy, or maximal marginal relevance")
    embedder: Literal["minilm", "static"] = Field("minilm", description=EMBEDDER_HELP)
    model: str = Field(PACKAGED, description=f"embedder minilm: {PACKAGED!r} (packaged) or a sentence-transformers folder")
    scope: Scope = Field("conversation", description="which rendering of each sample is embedded")
    max_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=8, le=512, description="tokens embedded per sample (its opening)")
    quality_from: str | None = Field(None, description="mmr: the step whose verdict score is each sample's quality")
    mmr_lambda: float = Field(0.5, ge=0.0, le=1.0, description="mmr: weight of quality against redundancy")


def k_center_greedy(emb, n: int) -> tuple[list[int], "object", "object"]:
    """Selected row indices in pick order, and for every row its nearest selected row and that cosine."""
    import numpy as np

    mean = emb.mean(axis=0)
    first = int(np.argmax(emb @ mean))
    selected = [first]
    best_cos = emb @ emb[first]
    nearest = np.full(emb.shape[0], first, dtype=np.int64)
    for _ in range(1, min(n, emb.shape[0])):
        pick = int(np.argmin(best_cos))  # farthest from the selected set (argmin: ties -> earliest)
        selected.append(pick)
        cos = emb @ emb[pick]
        closer = cos > best_cos
        best_cos = np.where(closer, cos, best_cos)
        nearest[closer] = pick
    return selected, nearest, best_cos


def mmr(emb, quality, n: int, lam: float) -> tuple[list[int], "object", "object"]:
    import numpy as np

    max_cos = np.full(emb.shape[0], -1.0, dtype=np.float32)
    nearest = np.full(emb.shape[0], -1, dtype=np.int64)
    chosen = np.zeros(emb.shape[0], dtype=bool)
    selected: list[int] = []
    for step in range(min(n, emb.shape[0])):
        score = lam * quality - (1.0 - lam) * (max_cos if step else 0.0)
        score[chosen] = -np.inf
        pick = int(np.argmax(score))
        selected.append(pick)
        chosen[pick] = True
        cos = emb @ emb[pick]
        closer = cos > max_cos
        max_cos = np.where(closer, cos, max_cos)
        nearest[closer] = pick
    return selected, nearest, max_cos


@register("filter.diversity_select")
class DiversitySelect(Filter):
    kind = "barrier"
    Params = DiversitySelectParams
    helper_modules = ("filters.views", "filters.embeddings", "filters.spill")

    def _quality(self, s: Sample) -> float:
        name = self.params.quality_from
        scores = [v.score for v in s.verdicts if v.filter == name and v.score is not None]
        if not scores:
            raise ValueError(f"sample {s.id} has no score from step {name!r} (quality_from): "
                             f"its verdicts come from {sorted({v.filter for v in s.verdicts})}")
        return float(scores[-1])

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        import numpy as np

        from filters.embeddings import embed_texts

        p = self.params
        if p.method == "mmr" and p.quality_from is None:
            raise ValueError("method mmr needs quality_from: the step whose verdict score measures quality")
        ids, texts, quality = [], [], []
        with Spill(self.ctx.run_dir / "tmp") as spill:
            for s in samples:
                spill.add(s)
                ids.append(s.id)
                texts.append(view(s, p.scope))
                if p.method == "mmr":
                    quality.append(self._quality(s))
            if spill.count <= p.n:
                for s in spill:
                    yield s.with_verdict(self.verdict(True, details={"rank": None}))
                return
            emb = embed_texts(model_for(p.embedder, p.model), texts, p.max_tokens)
            del texts
            if p.method == "k_center":
                selected, nearest, cos = k_center_greedy(emb, p.n)
            else:
                q = np.asarray(quality, dtype=np.float32)
                span = float(q.max() - q.min())
                q = (q - q.min()) / span if span > 0 else np.ones_like(q)
                selected, nearest, cos = mmr(emb, q, p.n, p.mmr_lambda)
            rank = {i: r for r, i in enumerate(selected)}
            for i, s in enumerate(spill):
                if i in rank:
                    yield s.with_verdict(self.verdict(True, details={"rank": rank[i]}))
                    continue
                c = round(float(cos[i]), 4)
                yield s.with_verdict(self.verdict(
                    False, "not_selected_diversity", score=c,
                    details={"nearest_selected": ids[int(nearest[i])], "cosine": c, "method": p.method,
                             "selected": p.n, "of": spill.count}))

