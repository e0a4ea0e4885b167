"""`personas.coverage`: a pass-through barrier that records how much of the persona space a run covered
and how diverse its samples are.

    coverage: {use: personas.coverage, after: [dedup]}

It passes every sample on unchanged and writes, for the samples it saw:
- per persona attribute: values covered out of the bank's vocabulary, counts, max/min balance;
- distinct personas, samples per generator and per kind;
- with `embeddings: true` (all-MiniLM-L6-v2 offline, or `embedder: static` for the model2vec model of
  filters/embeddings.py, for runs too big for MiniLM): the Vendi score ("effective number of distinct
  items") and mean nearest-neighbour cosine similarity of the distinct persona descriptions and of the
  sample texts, and distinct-2 (distinct word bigrams / all bigrams) of the sample texts.

The report goes to RUN_DIR/coverage/<step>.json, and its headline numbers into the step's counters, so
`refinery status` shows them. At most `max_texts` sample texts are embedded (the first ones, in input
order, so the report is the same on every run).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, field_validator

from personas.schema import ATTRIBUTE_FIELDS
from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params, Step

_WORD = re.compile(r"\w+")


def distinct_n(texts: list[str], n: int = 2) -> float:
    """Distinct n-grams over all n-grams, pooled over the texts (lower-cased words)."""
    grams: list[tuple[str, ...]] = []
    for text in texts:
        words = _WORD.findall(text.casefold())
        grams += [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


class CoverageParams(Params):
    attributes: list[str] = Field(default_factory=lambda: list(ATTRIBUTE_FIELDS))
    embeddings: bool = Field(True, description="also compute embedding diversity (loads all-MiniLM-L6-v2)")
    embedder: Literal["minilm", "static"] = Field("minilm", description="minilm, or static (model2vec, ~70x faster)")
    max_texts: int = Field(5000, ge=1, description="embed at most this many sample texts")

    @field_validator("attributes")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in ATTRIBUTE_FIELDS]
        if not names or unknown:
            raise ValueError(f"attributes must be a non-empty list of {list(ATTRIBUTE_FIELDS)}; unknown: {unknown}")
        return names


def coverage_report(personas: dict[str, dict[str, Any]], texts: list[str], counts: dict[str, Counter],
                    attributes: list[str], embeddings: bool, embedder: str = "minilm") -> dict[str, Any]:
    from personas.sampler import coverage

    report: dict[str, Any] = {
        "samples": sum(counts["kind"].values()),
        "distinct_personas": len(personas),
        "by_generator": dict(sorted(counts["generator"].items())),
        "by_kind": dict(sorted(counts["kind"].items())),
        "attributes": coverage(personas.values(), attributes) if personas else {},
        "distinct2_texts": round(distinct_n(texts), 4),
    }
    if embeddings:
        from personas.embeddings import embed, nearest_neighbour_similarity, vendi_score

        for name, items in (("personas", [p.get("description", "") for p in personas.values()]), ("texts", texts)):
            vectors = embed(items, embedder)
            report[f"vendi_{name}"] = round(vendi_score(vectors), 4)
            report[f"nn_similarity_{name}"] = round(nearest_neighbour_similarity(vectors), 4)
    return report


@register("personas.coverage")
class PersonaCoverage(Step):
    kind = "barrier"
    Params = CoverageParams

    @classmethod
    def fingerprint_files(cls) -> list:
        from pathlib import Path

        here = Path(__file__).parent
        return [here / "embeddings.py", here / "sampler.py", here.parent / "filters" / "embeddings.py",
                here.parent / "filters" / "diversity_metrics.py"]

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        p = self.params
        personas: dict[str, dict[str, Any]] = {}
        texts: list[str] = []
        counts: dict[str, Counter] = {"generator": Counter(), "kind": Counter()}
        for s in samples:
            if s.persona and s.persona.get("id") not in personas:
                personas[s.persona.get("id")] = s.persona
            if s.messages and len(texts) < p.max_texts:
                texts.append(s.text()[:2000])
            counts["generator"][str(s.provenance.get("generator"))] += 1
            counts["kind"][s.kind] += 1
            yield s
        report = coverage_report(personas, texts, counts, p.attributes, p.embeddings, p.embedder)
        out = self.ctx.run_dir / "coverage" / f"{self.ctx.step_name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, out)  # atomic: a reader never sees half a report
        self.ctx.counters["distinct_personas"] = report["distinct_personas"]
        for name in p.attributes:
            if name in report["attributes"]:
                self.ctx.counters[f"covered_{name}"] = round(report["attributes"][name]["covered"], 4)
        for key in ("vendi_personas", "vendi_texts", "distinct2_texts"):
            if key in report:
                self.ctx.counters[key] = report[key]
