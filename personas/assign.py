"""`personas.assign`: give each seed task (a document passage, a seed prompt) a persona, so generators that
start from files also speak for varied people.

    docs:     {use: seeds.documents}
    personas: {use: personas.assign, after: [docs], n: 200, strategy: coverage}

The pool is `n` personas drawn from the bank with `personas.sample`'s strategies; each sample gets the pool
member picked by a hash of its own content and the seed, so the assignment never depends on shard order
or position and a resumed run assigns exactly the same personas. A sample that already has a persona
keeps it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace

from pydantic import Field

from personas.bank import load_bank
from personas.sampler import SampleParams, SamplePersonas, sample_personas
from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Step


class AssignParams(SampleParams):
    n: int = Field(200, ge=1, description="size of the persona pool the samples are spread over")


@register("personas.assign")
class AssignPersonas(Step):
    kind = "map"
    Params = AssignParams

    input_paths = SamplePersonas.input_paths

    @classmethod
    def fingerprint_files(cls) -> list:
        from pathlib import Path

        here = Path(__file__).parent
        return [here / "sampler.py", here / "embeddings.py"]

    def __init__(self, params, ctx) -> None:
        super().__init__(params, ctx)
        self._pool: list[dict] | None = None

    def pool(self) -> list[dict]:
        if self._pool is None:  # once per worker process, not per shard
            p = self.params
            chosen = sample_personas(load_bank(p.bank), p.n, seed=p.seed, strategy=p.strategy,
                                     stratify_by=p.stratify_by, pool=p.pool,
                                     bank_name=f"bank {p.bank}" if p.bank else "the shipped persona bank")
            self._pool = [persona.model_dump() for persona in chosen]
        return self._pool

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        for s in samples:
            if s.persona:
                yield s
                continue
            pool = self.pool()
            digest = hashlib.sha256(f"{self.params.seed}:{s.id}".encode()).digest()
            persona = pool[int.from_bytes(digest[:8], "little") % len(pool)]
            yield replace(s, persona=persona,
                          provenance={**s.provenance, "persona_step": self.ctx.step_name,
                                      "persona_strategy": self.params.strategy})
