"""Personas: a deterministic shipped bank, external banks with clear errors, and the sampling step."""

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from personas.bank import DEFAULT_BANK, BankError, load_bank
from personas.build_bank import build_bank, main, vocabulary
from personas.schema import ATTRIBUTE_FIELDS, Persona, dedupe_personas
from personas.sampler import SampleParams, SamplePersonas, coverage, sample_personas
from pipelines.core.step import StepContext

ATTRS = {
    "occupation": "welder",
    "domain": "trades",
    "region": "Berlin, Germany",
    "age_band": "25-34",
    "expertise": "novice",
    "goals": "price a job properly, materials and labour included",
    "communication_style": "terse",
}


@pytest.fixture(scope="module")
def bank() -> list[Persona]:
    return load_bank()


def test_build_is_deterministic_and_matches_shipped_bank(tmp_path):
    first = build_bank(out=tmp_path / "a.jsonl").read_bytes()
    second = build_bank(out=tmp_path / "b.jsonl").read_bytes()
    assert first == second
    assert first == DEFAULT_BANK.read_bytes(), "shipped bank is stale: run python -m personas.build_bank"
    assert main(["--check"]) == 0
    assert DEFAULT_BANK.stat().st_size < 3_000_000


def test_shipped_bank_is_large_distinct_and_valid(bank):
    assert len(bank) >= 3000
    assert len({p.id for p in bank}) == len(bank)
    assert len({p.description for p in bank}) == len(bank)
    assert [p.id for p in bank] == sorted(p.id for p in bank)
    for line in DEFAULT_BANK.read_text(encoding="utf-8").splitlines():
        Persona.model_validate_json(line)  # ids are checked against content on load
    vocab = vocabulary()
    for name in ATTRIBUTE_FIELDS:  # every attribute value in the lists is used somewhere
        assert {getattr(p, name) for p in bank} == set(vocab[name]), name
    assert len(vocab["domain"]) >= 15 and len(vocab["region"]) >= 25 and len(vocab["occupation"]) >= 60


def test_persona_id_and_dedupe():
    a = Persona(**ATTRS, description="A welder in Berlin.")
    assert a.id and a.attributes() == ATTRS
    assert Persona(**ATTRS, description="A welder in Berlin.").id == a.id
    with pytest.raises(ValidationError, match="does not match"):
        Persona(**{**a.model_dump(), "region": "Lagos, Nigeria"})
    with pytest.raises(ValidationError):
        Persona(**ATTRS, description="x", hobby="chess")  # extra=forbid
    bare = Persona(description="Someone who likes chess.")
    assert bare.region == "unknown" and bare.expertise == "unknown"
    same_text = Persona(occupation="chess coach", description="someone  who likes CHESS")
    assert dedupe_personas([a, a, bare, same_text]) == [a, bare]


def test_sampler_is_deterministic_and_without_replacement(bank):
    ids = [p.id for p in sample_personas(bank, 200, seed=1)]
    assert ids == [p.id for p in sample_personas(bank, 200, seed=1)]
    assert ids != [p.id for p in sample_personas(bank, 200, seed=2)]
    assert len(set(ids)) == 200
    # The draw depends on the bank's content, not its row order.
    assert ids == [p.id for p in sample_personas(list(reversed(bank)), 200, seed=1)]
    with pytest.raises(ValueError, match="has only 3"):
        sample_personas(bank[:3], 4)
    everything = sample_personas(bank, len(bank), strategy="stratified", stratify_by=["domain", "region"])
    assert len({p.id for p in everything}) == len(bank)


def test_stratified_covers_every_domain_and_is_more_balanced(bank):
    domains = set(vocabulary()["domain"])
    n = len(domains) * 2
    strat = sample_personas(bank, n, seed=3, strategy="stratified")
    strat_counts = Counter(p.domain for p in strat)
    assert set(strat_counts) == domains and max(strat_counts.values()) == 2 == min(strat_counts.values())
    # Even the best of ten uniform draws leaves some domain under- or over-drawn at this size.
    best_uniform = min(_ratio(sample_personas(bank, n, seed=s), domains) for s in range(10))
    assert _ratio(strat, domains) == 1.0 < best_uniform
    odd = sample_personas(bank, len(domains) + 1, seed=4, strategy="stratified")
    assert set(p.domain for p in odd) == domains
    two_way = sample_personas(bank, 300, seed=5, strategy="stratified", stratify_by=["expertise", "age_band"])
    counts = Counter((p.expertise, p.age_band) for p in two_way)
    assert len(counts) == 15 and max(counts.values()) - min(counts.values()) <= 1


def _ratio(personas, domains) -> float:
    counts = Counter(p.domain for p in personas)
    return float("inf") if set(counts) != domains else max(counts.values()) / min(counts.values())


def test_params_validate():
    assert SampleParams(n=5).stratify_by == ["domain"]
    with pytest.raises(ValidationError, match="unknown persona attribute"):
        SampleParams(n=5, strategy="stratified", stratify_by=["domian"])
    with pytest.raises(ValidationError):
        SampleParams(n=0)
    with pytest.raises(ValidationError):
        SampleParams(n=5, strategy="random")
    with pytest.raises(ValidationError):
        SampleParams(n=5, seed=1, extra=True)


def test_coverage(bank):
    picked = sample_personas(bank, 30, seed=0, strategy="stratified")
    report = coverage(picked, ["domain", "region"])
    assert report["domain"]["covered"] == 1.0 and report["domain"]["max_min_ratio"] == 1.0
    assert sum(report["domain"]["counts"].values()) == 30
    assert 0 < report["region"]["covered"] < 1
    as_dicts = coverage([p.model_dump() for p in picked], ["domain"], universe=bank)
    assert as_dicts["domain"] == report["domain"]
    with pytest.raises(ValueError, match="unknown persona attribute"):
        coverage(picked, ["colour"])


def test_external_jsonl_bank(tmp_path):
    path = tmp_path / "ext.jsonl"
    rows = [
        {"persona": "A lighthouse keeper who collects sea glass."},
        {"description": "A beekeeper worried about winter losses.", "region": "rural Iowa, USA"},
        dict(ATTRS),  # no description: built from the attributes
        {"description": "A beekeeper  worried about winter LOSSES."},  # duplicate after normalising
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    loaded = load_bank(path)
    assert len(loaded) == 3
    assert loaded[0].description == "A lighthouse keeper who collects sea glass."
    assert loaded[0].occupation == "unknown" and loaded[1].region == "rural Iowa, USA"
    assert "welder" in loaded[2].description and "Berlin, Germany" in loaded[2].description
    assert load_bank(path) == loaded  # descriptions built from attributes are deterministic


def test_external_parquet_bank(tmp_path):
    path = tmp_path / "ext.parquet"
    table = pa.table({
        "description": ["A ferry captain in Istanbul.", None],
        "occupation": ["ferry captain", "glassblower"],
        "domain": [None, "arts"],
        "region": [None, "Venice, Italy"],
        "age_band": [None, "50-64"],
        "expertise": [None, "Expert"],
        "goals": [None, "train an apprentice"],
        "communication_style": [None, "sardonic"],
    })
    pq.write_table(table, path)
    first, second = load_bank(path)
    assert first.occupation == "ferry captain" and first.domain == "unknown"
    assert second.expertise == "expert"
    assert "glassblower" in second.description and "sardonic" in second.description


@pytest.mark.parametrize("content, message", [
    ('{"description": "ok"}\n{"description": "broken"\n', r"ext\.jsonl:line 2: not valid JSON"),
    ('{"description": "ok"}\n["a", "list"]\n', r"line 2: expected an object"),
    ('{"description": "ok", "colour": "red"}\n', r"line 1: unknown column\(s\) \['colour'\]"),
    ('{"occupation": "welder"}\n', r"line 1: no description, and attribute\(s\) \['domain'"),
    ('{"description": "ok", "expertise": "guru"}\n', r"line 1: invalid persona: expertise"),
    ('{"description": "ok", "id": "abc"}\n', r"line 1: invalid persona: .*does not match"),
    ("\n", r"has no personas"),
])
def test_bad_jsonl_rows_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "ext.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BankError, match=message):
        load_bank(path)


def test_bad_bank_files(tmp_path):
    with pytest.raises(BankError, match="does not exist"):
        load_bank(tmp_path / "missing.jsonl")
    csv = tmp_path / "bank.csv"
    csv.write_text("description\nx\n")
    with pytest.raises(BankError, match="unsupported file type '.csv'"):
        load_bank(csv)
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"description": ["fine", "   "]}), bad)
    with pytest.raises(BankError, match=r"bad\.parquet:row 2: no description"):
        load_bank(bad)


def _run_step(tmp_path: Path, **params):
    ctx = StepContext(step_name="personas", recipe_name="t", fingerprint="x", run_dir=tmp_path)
    step = SamplePersonas(SampleParams(**params), ctx)
    try:
        return list(step.run(iter([])))
    finally:
        step.close()


def test_step_yields_seed_samples(tmp_path):
    assert SamplePersonas.kind == "source" and SamplePersonas.component == "personas.sample"
    samples = _run_step(tmp_path, n=25, seed=9, strategy="stratified")
    assert len(samples) == 25 and {s.kind for s in samples} == {"seed"}
    assert len({s.id for s in samples}) == 25
    assert samples[0].provenance == {"step": "personas", "generator": "personas.sample",
                                     "strategy": "stratified", "seed": 9}
    assert all(Persona.model_validate(s.persona).id == s.persona["id"] for s in samples)
    assert [s.id for s in samples] == [s.id for s in _run_step(tmp_path, n=25, seed=9, strategy="stratified")]


def test_step_with_external_bank(tmp_path):
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps({"description": f"Persona number {i}."}) + "\n" for i in range(5)))
    assert len(_run_step(tmp_path, n=5, bank=str(path))) == 5
    with pytest.raises(ValueError, match=r"n=6 .*tiny\.jsonl has only 5"):
        _run_step(tmp_path, n=6, bank=str(path))
