"""`personas.sample`: the source step that starts a recipe with one seed sample per persona.

    - name: personas
      use: personas.sample
      params: {n: 500, seed: 7, strategy: stratified, stratify_by: [domain, region]}

Sampling is seeded and without replacement. "stratified" deals personas round-robin across the strata
(the value combinations of `stratify_by`), so every stratum is as evenly represented as the bank allows;
"uniform" draws from the whole bank, so large strata dominate; "coverage" embeds a seeded random pool of
`pool` personas (all-MiniLM-L6-v2, see personas.embeddings) and picks farthest-point: each next persona is
the one least similar to all picked so far, which spreads the sample over the whole space of descriptions
(occupation, place, goal and style together) instead of over one attribute.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator

from personas.bank import load_bank
from personas.schema import ATTRIBUTE_FIELDS, UNKNOWN, Persona
from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params as StepParams
from pipelines.core.step import Step

Strategy = Literal["uniform", "stratified", "coverage"]


class SampleParams(StepParams):
    n: int = Field(ge=1)
    seed: int = 0
    strategy: Strategy = "uniform"
    stratify_by: list[str] = Field(default_factory=lambda: ["domain"])
    # Path to an external .jsonl/.parquet bank; None uses the bank shipped in personas/data.
    bank: str | None = None
    # coverage: how many personas (a seeded random subset of the bank) are embedded and chosen from.
    pool: int = Field(1000, ge=1)

    @field_validator("stratify_by")
    @classmethod
    def _known_attributes(cls, names: list[str]) -> list[str]:
        _check_attributes(names)
        return names


def _check_attributes(names: Sequence[str]) -> None:
    if not names:
        raise ValueError(f"name at least one persona attribute; choose from {list(ATTRIBUTE_FIELDS)}")
    unknown = [name for name in names if name not in ATTRIBUTE_FIELDS]
    if unknown:
        raise ValueError(f"unknown persona attribute(s) {unknown}; choose from {list(ATTRIBUTE_FIELDS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"persona attributes listed twice: {list(names)}")


def sample_personas(
    bank: Sequence[Persona],
    n: int,
    seed: int = 0,
    strategy: Strategy = "uniform",
    stratify_by: Sequence[str] = ("domain",),
    bank_name: str = "the persona bank",
    pool: int = 1000,
) -> list[Persona]:
    """n distinct personas, the same ones for the same bank, seed and strategy."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if n > len(bank):
        raise ValueError(
            f"asked for n={n} personas but {bank_name} has only {len(bank)}; sampling is without "
            "replacement, so lower n or use a larger bank"
        )
    # Sorting by id makes the draw independent of the order rows happen to have in the file.
    ordered = sorted(bank, key=lambda p: p.id)
    rng = random.Random(seed)
    if strategy == "uniform":
        return rng.sample(ordered, n)
    if strategy == "coverage":
        return _coverage_sample(ordered, n, rng, pool)
    if strategy != "stratified":
        raise ValueError(f"unknown strategy {strategy!r}; use 'uniform', 'stratified' or 'coverage'")
    _check_attributes(stratify_by)
    strata: dict[tuple[str, ...], list[Persona]] = {}
    for persona in ordered:
        strata.setdefault(tuple(getattr(persona, name) for name in stratify_by), []).append(persona)
    keys = sorted(strata)
    for key in keys:
        rng.shuffle(strata[key])
    # Shuffled so that, when n is not a multiple of the strata count, the strata that get one extra
    # persona vary with the seed instead of always being the alphabetically first.
    rng.shuffle(keys)
    chosen: list[Persona] = []
    depth = 0
    while len(chosen) < n:  # terminates: n <= len(ordered), and each full pass takes every stratum's next
        for key in keys:
            if depth < len(strata[key]):
                chosen.append(strata[key][depth])
                if len(chosen) == n:
                    break
        depth += 1
    return chosen


def _coverage_sample(ordered: Sequence[Persona], n: int, rng: random.Random, pool: int) -> list[Persona]:
    """Farthest-point sampling in embedding space over a seeded random pool of the bank."""
    from personas.embeddings import embed, farthest_point  # torch: only for this strategy

    if n > pool:
        raise ValueError(f"strategy 'coverage' chooses n={n} personas from a pool of {pool}; raise pool")
    candidates = rng.sample(list(ordered), min(pool, len(ordered)))
    vectors = embed([p.description for p in candidates])
    return [candidates[i] for i in farthest_point(vectors, n, start=rng.randrange(len(candidates)))]


def coverage(
    personas: Iterable[Persona | Mapping[str, Any]],
    attributes: Sequence[str] = ATTRIBUTE_FIELDS,
    universe: Iterable[Persona | Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per attribute: value counts, how many of the possible values appear, and the covered fraction.

    Possible values come from `universe` (e.g. the bank that was sampled) or, by default, from the
    shipped attributes.yaml. Accepts Persona objects or the dicts stored in `Sample.persona`.
    """
    _check_attributes(attributes)
    rows = [_as_dict(p) for p in personas]
    if universe is None:
        from personas.build_bank import vocabulary  # reads attributes.yaml; only needed here

        possible = {name: set(values) for name, values in vocabulary().items()}
    else:
        pool = [_as_dict(p) for p in universe]
        possible = {name: {str(r.get(name, UNKNOWN)) for r in pool} - {UNKNOWN} for name in attributes}
    report: dict[str, dict[str, Any]] = {}
    for name in attributes:
        counts = Counter(str(row.get(name, UNKNOWN)) for row in rows)
        values = possible[name]
        covered = len(values & counts.keys())
        report[name] = {
            "counts": dict(sorted(counts.items())),
            "values_covered": covered,
            "values_total": len(values),
            "covered": covered / len(values) if values else 0.0,
            # max/min count among values that appear: 1.0 is perfectly balanced.
            "max_min_ratio": max(counts.values()) / min(counts.values()) if counts else 0.0,
        }
    return report


def _as_dict(persona: Persona | Mapping[str, Any]) -> Mapping[str, Any]:
    return persona.attributes() if isinstance(persona, Persona) else persona


@register("personas.sample")
class SamplePersonas(Step):
    kind = "source"
    Params = SampleParams

    @classmethod
    def input_paths(cls, params: dict) -> dict[tuple, Path]:
        # The bank's content decides which personas are drawn: an edited bank must not reuse old samples.
        from pathlib import Path

        from personas.bank import DEFAULT_BANK

        return {("bank",): Path(params.get("bank") or DEFAULT_BANK)}

    @classmethod
    def fingerprint_files(cls) -> list:
        # The coverage strategy's choices depend on the embedding code as much as on this file.
        from pathlib import Path

        return [Path(__file__).with_name("embeddings.py")]

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        # A source has no upstream; the executor hands it an empty iterator, which is ignored.
        params: SampleParams = self.params  # type: ignore[assignment]
        bank = load_bank(params.bank)
        chosen = sample_personas(
            bank,
            params.n,
            seed=params.seed,
            strategy=params.strategy,
            stratify_by=params.stratify_by,
            pool=params.pool,
            bank_name=f"bank {params.bank}" if params.bank else "the shipped persona bank",
        )
        provenance = {
            "step": self.ctx.step_name,
            "generator": "personas.sample",
            "strategy": params.strategy,
            "seed": params.seed,
        }
        for persona in chosen:
            yield Sample(kind="seed", persona=persona.model_dump(), provenance=dict(provenance))
