"""Text-to-persona expansion on the real embedded model, the coverage-maximising sampler on the real
all-MiniLM-L6-v2 encoder, the coverage report step, and deterministic persona assignment."""

import json

import numpy as np
import pytest

from personas.bank import load_bank
from personas.embeddings import embed, farthest_point, nearest_neighbour_similarity, vendi_score
from personas.sampler import sample_personas
from personas.schema import Persona
from pipelines.core.sample import Message, Sample
from tests.generators.helpers import MODEL_PREFIX, make_step, run


def test_vendi_and_farthest_point_on_known_vectors():
    same = np.tile(np.array([[1.0, 0.0, 0.0]]), (4, 1))
    assert vendi_score(same) == pytest.approx(1.0)
    assert vendi_score(np.eye(5)) == pytest.approx(5.0)
    x = np.array([[1, 0], [0.99, 0.141], [0, 1], [-1, 0]], dtype=float)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert farthest_point(x, 2, start=0) == [0, 3]  # the opposite point first
    assert sorted(farthest_point(x, 3, start=0)) == [0, 2, 3]  # the near-duplicate of 0 comes last
    # each row's closest other row: 1 (0.99), 0 (0.99), 1 (0.14), 2 (0.0)
    assert nearest_neighbour_similarity(x) == pytest.approx((0.99 + 0.99 + 0.141 + 0.0) / 4, abs=0.01)


def test_coverage_sampler_spreads_personas_out():
    bank = load_bank()
    a = sample_personas(bank, 8, seed=4, strategy="coverage", pool=48)
    assert [p.id for p in a] == [p.id for p in sample_personas(bank, 8, seed=4, strategy="coverage", pool=48)]
    assert len({p.id for p in a}) == 8
    uniform = sample_personas(bank, 8, seed=4, strategy="uniform")
    spread, plain = embed([p.description for p in a]), embed([p.description for p in uniform])
    assert nearest_neighbour_similarity(spread) < nearest_neighbour_similarity(plain)
    assert vendi_score(spread) > vendi_score(plain)
    with pytest.raises(ValueError, match="raise pool"):
        sample_personas(bank, 10, strategy="coverage", pool=5)


def test_expand_writes_a_richer_valid_persona(tmp_path):
    bank = load_bank()
    seeds = [Sample(kind="seed", persona=p.model_dump()) for p in bank[30:32]]
    out = run(make_step("personas.expand", tmp_path, max_tokens=60), seeds)
    assert len(out) == 2
    kept = [s for s in out if not s.dropped]
    assert kept, [s.verdicts[-1].to_dict() for s in out]
    for seed, s in zip(seeds, out):
        if s.dropped:
            assert s.verdicts[-1].reason in {"expansion_too_short", "copied_example", "expansion_off_persona"}
            continue
        persona = Persona.model_validate(s.persona)  # a valid persona, id matching its new content
        assert persona.attributes() == Persona.model_validate(seed.persona).attributes()
        assert persona.description != seed.persona["description"] and persona.id != seed.persona["id"]
        assert s.meta["persona_seed"] == {"id": seed.persona["id"], "description": seed.persona["description"]}
        e = s.provenance["persona_expansion"]
        assert e["template"] == "personas/expand_fewshot.jinja" and e["model"].startswith(MODEL_PREFIX)
        assert e["from_persona_id"] == seed.persona["id"]
    with pytest.raises(ValueError, match="no persona"):
        run(make_step("personas.expand", tmp_path), [Sample(kind="seed", meta={"task": "x"})])


def test_coverage_step_reports_and_passes_samples_through(tmp_path):
    bank = load_bank()
    samples = [Sample(kind="chat", persona=p.model_dump(), provenance={"generator": g},
                      messages=[Message("user", f"question {i} about {p.occupation}"), Message("assistant", "ok")])
               for i, (p, g) in enumerate(zip(bank[:6], ["generate.multi_turn", "generate.evolve"] * 3))]
    step = make_step("personas.coverage", tmp_path, llm=False)
    out = run(step, samples)
    assert [s.id for s in out] == [s.id for s in samples]
    report = json.loads((tmp_path / "coverage" / "personas.coverage.json").read_text())
    assert report["samples"] == 6 and report["distinct_personas"] == 6
    assert report["by_generator"] == {"generate.evolve": 3, "generate.multi_turn": 3}
    assert 0 < report["attributes"]["domain"]["covered"] <= 1
    assert 1 <= report["vendi_personas"] <= 6 and 1 <= report["vendi_texts"] <= 6
    assert 0 < report["distinct2_texts"] <= 1
    assert step.ctx.counters["distinct_personas"] == 6 and "vendi_texts" in step.ctx.counters


def test_assign_is_deterministic_and_keeps_existing_personas(tmp_path):
    seeds = [Sample(kind="seed", meta={"task": f"task {i}"}) for i in range(12)]
    own = Sample(kind="seed", persona=load_bank()[0].model_dump(), meta={"task": "mine"})
    first = run(make_step("personas.assign", tmp_path, llm=False, n=5, seed=2), [*seeds, own])
    again = run(make_step("personas.assign", tmp_path, llm=False, n=5, seed=2), [own, *reversed(seeds)])
    by_task = {s.meta["task"]: s.persona["id"] for s in again}
    assert all(by_task[s.meta["task"]] == s.persona["id"] for s in first)  # order does not matter
    assert first[-1].persona == own.persona
    assert 1 < len({s.persona["id"] for s in first[:-1]}) <= 5


def test_coverage_with_the_static_embedder_ranks_spread_personas_above_one_kind(tmp_path):
    """The static model (made offline from MiniLM on first use) also tells six different personas from
    six near-copies of one, and the step reports the same keys."""
    bank = load_bank()
    spread = [Sample(kind="chat", persona=p.model_dump(), messages=[Message("user", p.description), Message("assistant", "ok")])
              for p in bank[:6]]
    one = bank[0].model_dump()
    copies = [Sample(kind="chat", persona={**one, "id": f"c{i}", "description": f"{one['description']} ({i})"},
                     messages=[Message("user", f"{one['description']} ({i})"), Message("assistant", "ok")])
              for i in range(6)]
    reports = []
    for name, samples in (("spread", spread), ("copies", copies)):
        out_dir = tmp_path / name
        run(make_step("personas.coverage", out_dir, llm=False, embedder="static"), samples)
        reports.append(json.loads((out_dir / "coverage" / "personas.coverage.json").read_text()))
    assert reports[0]["vendi_personas"] > reports[1]["vendi_personas"] >= 1
    assert reports[0]["vendi_texts"] > reports[1]["vendi_texts"]
