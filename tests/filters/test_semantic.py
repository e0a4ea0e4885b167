"""Semantic dedup and diversity on the real embedders, offline on CPU: the packaged all-MiniLM-L6-v2 and
the static model distilled from it (model2vec; the steps' default)."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

from filters.embeddings import PACKAGED, STATIC, embed, load_model, model_path, static_model_path
from filters.semantic_core import exact_duplicates, semantic_duplicates
from pipelines.core.sample import Message, Sample, Verdict
from pipelines.core.store import StepDir
from tests.filters.conftest import make_step, run_step
from tests.filters.data import gsm8k


def chat(user: str, assistant: str = "Let me think about that.", **kw) -> Sample:
    return Sample(kind="chat", messages=[Message("user", user), Message("assistant", assistant)], **kw)


def renumber(q: str, rng: random.Random) -> str:
    """The same problem with its first number changed: a near-paraphrase, not a text duplicate."""
    return re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randint(1, 3)), q, count=1)


def renumber_pattern(q: str) -> str:
    return re.sub(r"\d+", "#", q)


@pytest.fixture(scope="module")
def questions():
    rng = random.Random(1)
    base = [r["question"] for r in gsm8k("train")[:240]]
    variants = [renumber(q, rng) for q in base if re.search(r"\d", q)][:60]
    texts = base + variants
    rng.shuffle(texts)
    return texts


@pytest.fixture(scope="module")
def emb(questions):
    return embed(load_model(PACKAGED), questions)


def test_packaged_model_is_found_offline_and_other_models_by_path(tmp_path):
    path = model_path(PACKAGED)
    assert (path / "model.safetensors").is_file()
    with pytest.raises(FileNotFoundError, match="no downloads"):
        model_path(str(tmp_path / "missing-model"))
    e = embed(load_model(str(path)), ["a cat", "a kitten", "quarterly tax filing"])
    assert e.shape == (3, 384) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2


def test_static_model_is_distilled_from_the_packaged_minilm_once_and_means_the_same(questions):
    path = static_model_path()  # distilled on first use (model2vec), then only loaded
    assert path.name == STATIC and (path / "config.json").is_file()
    assert static_model_path() == path
    model = load_model(STATIC)
    e = embed(model, ["a cat", "a kitten", "quarterly tax filing", "zzzz"])
    assert e.shape == (4, 256) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e[:3], axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2
    # What dedup needs of it: a renumbered question's nearest neighbour is its original.
    static = embed(model, questions)
    pattern = [renumber_pattern(q) for q in questions]
    twins = [i for i, q in enumerate(pattern) if pattern.count(q) == 2]
    found = [pattern[int(np.argsort(static[i] @ static.T)[-2])] == pattern[i] for i in twins]
    assert len(twins) >= 100 and np.mean(found) > 0.95, np.mean(found)


def test_both_embedders_are_selectable_in_a_step(tmp_path, questions):
    samples = [chat(q) for q in questions[:60]]
    for embedder, model in (("static", STATIC), ("minilm", PACKAGED)):
        out = run_step("filter.semantic_dedup", tmp_path, samples, threshold=0.9, scope="user_turns",
                       embedder=embedder)
        assert {s.verdicts[-1].details.get("model") for s in out if s.dropped} <= {model}
    with pytest.raises(ValueError, match="embedder"):
        run_step("filter.semantic_dedup", tmp_path, samples, embedder="bert")


def test_clustered_search_agrees_with_exact_all_pairs(emb):
    for threshold in (0.85, 0.9, 0.95):
        exact, _ = exact_duplicates(emb, threshold)
        res = semantic_duplicates(emb, threshold, clusters=8, probes=2, seed=0)
        assert res.k == 8
        agree = (res.duplicate_of == exact).mean()
        assert agree >= 0.99, (threshold, agree)
    res = semantic_duplicates(emb, 0.9)  # below 2,048 samples the default is one cluster: exact
    assert np.array_equal(res.duplicate_of, exact_duplicates(emb, 0.9)[0])


def test_semantic_dedup_step_drops_renumbered_questions(tmp_path, questions):
    samples = [chat(q) for q in questions[:150]]
    out = run_step("filter.semantic_dedup", tmp_path, samples, threshold=0.9, scope="user_turns", clusters=6)
    assert [s.id for s in out] == [s.id for s in samples]
    dropped = [s for s in out if s.dropped]
    pairs = sum(renumber_pattern(q) in {renumber_pattern(x) for x in questions[:i]} for i, q in enumerate(questions[:150]))
    assert pairs - 3 <= len(dropped) <= pairs + 5  # the renumbered copies whose original came first
    ids = {s.id: s for s in out}
    for s in dropped:
        v = s.verdicts[-1]
        assert v.reason == "semantic_duplicate" and v.score >= 0.9 and v.details["cosine"] == v.score
        original = ids[v.duplicate_of]
        assert not original.dropped and 0 <= v.details["cluster"] < 6
        # The kept one is the same problem with other numbers.
        a, b = (renumber_pattern(x.messages[0].content) for x in (s, original))
        assert a == b or v.score > 0.95
    assert all("cluster" in s.verdicts[-1].details for s in out)


@pytest.mark.parametrize("embedder,varied", [("static", 8), ("minilm", 20)])
def test_diversity_report_per_run_and_group(tmp_path, questions, embedder, varied):
    # Static vectors share more of one direction than MiniLM's, so the same texts score a lower Vendi:
    # compare Vendi scores made with the same embedder only.
    samples = []
    for i, q in enumerate(questions[:120]):
        gen = "varied" if i % 2 else "repetitive"
        text = q if gen == "varied" else "How many apples are left if I eat one of my three apples?"
        samples.append(chat(text, persona={"domain": ["math", "cooking"][i % 4 // 2]}, provenance={"generator": gen}))
    ctx_dir = tmp_path
    step = make_step("filter.diversity_report", ctx_dir, group_by=["generator", "persona.domain", "kind"], clusters=8,
                     embedder=embedder)
    out = list(step.run(iter(samples)))
    assert out == samples  # a report never changes or drops anything
    report = json.loads((StepDir.of(ctx_dir, step.ctx.step_name, step.ctx.fingerprint).root / "diversity.json").read_text())
    g = report["groups"]["generator"]
    assert g["repetitive"]["vendi"] < 1.5 < varied < g["varied"]["vendi"]
    assert g["repetitive"]["distinct_2"] < 0.1 < 0.5 < g["varied"]["distinct_2"]
    assert g["repetitive"]["cluster_coverage"] == 1 / 8 and g["repetitive"]["cluster_balance"] == 0.0
    assert g["varied"]["cluster_coverage"] > 0.5 and g["varied"]["cluster_balance"] > 0.5
    assert set(report["groups"]["persona.domain"]) == {"math", "cooking"} and set(report["groups"]["kind"]) == {"chat"}
    assert report["overall"]["n"] == 120 and step.ctx.counters["diversity_vendi_x100"] > 0


def test_diversity_select_keeps_the_most_diverse_and_says_why_not(tmp_path, questions):
    same = "What is the sum of two and two, written as a number?"
    samples = [chat(same + " " * i) for i in range(15)] + [chat(q) for q in questions[:25]]
    out = run_step("filter.diversity_select", tmp_path, samples, n=20, scope="user_turns")
    kept = [s for s in out if not s.dropped]
    assert len(kept) == 20 and sorted(s.verdicts[-1].details["rank"] for s in kept) == list(range(20))
    assert sum(s.messages[0].content.startswith("What is the sum") for s in kept) == 1
    kept_ids = {s.id for s in kept}
    for s in out:
        if s.dropped:
            v = s.verdicts[-1]
            assert v.reason == "not_selected_diversity" and v.details["nearest_selected"] in kept_ids
            assert v.details["selected"] == 20 and v.details["of"] == 40
    # MMR trades quality against redundancy; quality comes from an earlier step's verdict scores.
    scored = [s.with_verdict(Verdict("judge", True, score=float(i % 5))) for i, s in enumerate(samples)]
    out = run_step("filter.diversity_select", tmp_path, scored, n=5, method="mmr", quality_from="judge",
                   mmr_lambda=0.9, scope="user_turns")
    assert all(s.verdicts[-2].score == 4.0 for s in out if not s.dropped)
    with pytest.raises(ValueError, match="quality_from"):
        run_step("filter.diversity_select", tmp_path, samples, n=5, method="mmr")


def test_refinery_diversity_command_on_a_run(tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app
    from pipelines.core.executor import run_recipe
    from pipelines.core.recipe import load_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: div\nshard_size: 50\nworkers: 1\nsteps:\n"
                      "  source: {use: source.synthetic, n: 60, seed: 2, duplicate_rate: 0.5}\n")
    run_recipe(load_recipe(recipe), tmp_path / "run")
    runner = CliRunner()  # in-process: the model loaded by the tests above is reused
    args = ["diversity", str(tmp_path / "run"), "--clusters", "4"]
    done = runner.invoke(app, [*args, "--by", "generator", "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["overall"]["n"] == 60 and set(report["groups"]["generator"]) == {"source.synthetic"}
    assert 1.0 < report["overall"]["vendi"] < 60 and report["clusters"] == 4
    table = runner.invoke(app, [*args, "--by", "kind"])
    assert table.exit_code == 0 and "vendi" in table.stdout and "chat" in table.stdout
    bad = runner.invoke(app, [*args, "--by", "colour"])
    assert bad.exit_code == 2 and "group key 'colour'" in bad.output
