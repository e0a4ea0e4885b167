"""Which tools a sample offers, and which calls its request must need: a `Plan` per case.

- single:     one tool offered, one call to it.
- parallel:   one call per item, 2..max_parallel calls to one tool, or (when the catalog groups the tool
              with another) one call each to two different tools (BFCL's "parallel multiple").
- multiple:   n_offered tools, one of them right; distractors come from the target's own group first
              (BFCL groups similar tools: the hard, realistic distractors), then from the whole catalog.
- multi_step: a chain (first, second) where the second call takes the first one's result: the built-in
              chains when the catalog has them, else two tools that came together in a group.
- no_tool:    1..n_offered tools, none needed.

Targets are drawn with weights that favour tools whose name and description share words with the
persona (occupation, domain, goals), so a nurse is more often offered dosage tools than stock tickers.
Offered tools always have distinct names. Everything is drawn from the `rng` passed in (seeded by the
sample), so the same sample gets the same plan in every run.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pipelines.tools.catalog import Catalog
from pipelines.tools.schema import tool_name

_WORD = re.compile(r"[a-z]{3,}")
_STOP = frozenset("the and for with from that this into your their about over under given based using".split())


@dataclass(frozen=True)
class Plan:
    case: str
    offered: tuple[int, ...]              # catalog indices, in the order the prompt lists them
    steps: tuple[tuple[int, ...], ...]    # per assistant turn, the calls it must make (catalog indices)

    def step_names(self, catalog: Catalog) -> list[list[str]]:
        return [[tool_name(catalog.tools[i]) for i in step] for step in self.steps]


def words(text: str) -> frozenset[str]:
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).replace("_", " ").replace(".", " ").lower()
    return frozenset(w for w in _WORD.findall(text) if w not in _STOP)


@lru_cache(maxsize=16)
def _tool_words(catalog_id: int, tools: tuple[str, ...]) -> tuple[frozenset[str], ...]:
    return tuple(words(t) for t in tools)


def persona_weights(catalog: Catalog, persona: dict[str, Any] | None, pool: list[int]) -> list[float]:
    if not persona:
        return [1.0] * len(pool)
    pw = words(" ".join(str(persona.get(k, "")) for k in ("occupation", "domain", "goals")))
    texts = tuple(f"{tool_name(t)} {t['function'].get('description', '')}" for t in catalog.tools)
    tw = _tool_words(id(catalog), texts)
    return [1.0 + 3.0 * len(pw & tw[i]) for i in pool]


def _draw(rng: random.Random, catalog: Catalog, persona: dict[str, Any] | None, pool: list[int]) -> int:
    return rng.choices(pool, weights=persona_weights(catalog, persona, pool), k=1)[0]


def _add_distinct(chosen: list[int], candidates: list[int], catalog: Catalog, k: int, rng: random.Random) -> None:
    """Add up to k - len(chosen) tools from candidates (shuffled) whose names are not offered yet."""
    candidates = list(candidates)
    rng.shuffle(candidates)
    names = {tool_name(catalog.tools[i]) for i in chosen}
    for i in candidates:
        if len(chosen) >= k:
            return
        name = tool_name(catalog.tools[i])
        if name not in names:
            chosen.append(i)
            names.add(name)


def make_plan(case: str, catalog: Catalog, rng: random.Random, persona: dict[str, Any] | None = None,
              n_offered: int = 3, max_parallel: int = 3) -> Plan:
    everything = list(range(len(catalog)))
    if case == "multi_step":
        return _multi_step(catalog, rng, persona, n_offered)
    target = _draw(rng, catalog, persona, everything)
    if case == "single":
        return Plan(case, (target,), ((target,),))
    if case == "parallel":
        partners = [target]
        if rng.random() < 0.3:
            _add_distinct(partners, [i for g in catalog.groups_of(target) for i in g], catalog, 2, rng)
        if len(partners) == 2:
            return Plan(case, tuple(partners), (tuple(partners),))
        return Plan(case, (target,), ((target,) * rng.randint(2, max_parallel),))
    if case in ("multiple", "no_tool"):
        k = n_offered if case == "multiple" else rng.randint(1, n_offered)
        chosen = [target]
        _add_distinct(chosen, [i for g in catalog.groups_of(target) for i in g], catalog, k, rng)
        _add_distinct(chosen, rng.sample(everything, min(len(everything), 4 * k)), catalog, k, rng)
        if case == "multiple" and len(chosen) < 2:
            raise ValueError("a multiple-choice sample needs a catalog with at least two differently named tools")
        rng.shuffle(chosen)
        return Plan(case, tuple(chosen), ((target,),) if case == "multiple" else ())
    raise ValueError(f"unknown case {case!r}; known: single, parallel, multiple, multi_step, no_tool")


def _multi_step(catalog: Catalog, rng: random.Random, persona: dict[str, Any] | None, n_offered: int) -> Plan:
    if catalog.chains:
        first, second = rng.choice(catalog.chains)
    else:
        pairs = [g for g in catalog.groups if len({tool_name(catalog.tools[i]) for i in g}) >= 2]
        if not pairs:
            raise ValueError("a multi-step sample needs chained built-in tools or a group of two differently "
                             "named tools in the catalog")
        group = list(rng.choice(pairs))
        first = _draw(rng, catalog, persona, group)
        second = rng.choice([i for i in group if tool_name(catalog.tools[i]) != tool_name(catalog.tools[first])])
    offered = [first]
    _add_distinct(offered, [second], catalog, 2, rng)
    # One distractor now and then, so the model also learns to ignore tools in a chain.
    if n_offered > 2 and rng.random() < 0.5:
        _add_distinct(offered, rng.sample(range(len(catalog)), min(len(catalog), 8)), catalog, 3, rng)
    rng.shuffle(offered)
    return Plan("multi_step", tuple(offered), ((first,), (second,)))
