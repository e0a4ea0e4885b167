"""Exact and near-duplicate dedup on generated data with known similarities, and through the executor."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from filters.near_dedup import NearDedupParams, lsh_bands
from pipelines.core.sample import Message, Sample
from tests.filters.conftest import run_step
from tests.filters.gen import base_text, edit, exact_jaccard, greedy_truth

ROOT = Path(__file__).parents[2]


def sample(user: str, assistant: str = "Noted.") -> Sample:
    return Sample(kind="chat", messages=[Message("user", user), Message("assistant", assistant)])


@pytest.fixture(scope="module")
def corpus():
    """300 originals of 60 words and 300 copies with 0-11 words replaced (Jaccard ~0.45-1.0), shuffled."""
    rng = random.Random(7)
    originals = [base_text(rng, 60) for _ in range(300)]
    copies = [edit(rng, rng.choice(originals), rng.randrange(0, 12)) for _ in range(300)]
    texts = originals + copies
    rng.shuffle(texts)
    return texts


def test_lsh_bands_catch_a_pair_at_the_threshold():
    for t in (0.5, 0.7, 0.8, 0.9):
        b = lsh_bands(t, 128)
        r = 128 // b
        assert 1 - (1 - t ** r) ** b >= 0.995
    with pytest.raises(ValueError, match="must divide"):
        NearDedupParams(bands=7)


@pytest.mark.parametrize("threshold", [0.6, 0.8])
def test_near_dedup_matches_exact_jaccard_ground_truth(tmp_path, corpus, threshold):
    truth = greedy_truth(corpus, threshold)
    samples = [sample(t) for t in corpus]
    out = run_step("filter.near_dedup", tmp_path, samples, threshold=threshold, scope="user_turns")
    assert [s.id for s in out] == [s.id for s in samples]  # every sample, in input order
    got = [s.verdicts[-1] for s in out]
    assert [not v.keep for v in got] == [t >= 0 for t in truth]
    n_dups = sum(t >= 0 for t in truth)
    assert 40 < n_dups < 280  # the threshold really splits the injected copies
    for v, t, s in zip(got, truth, out):
        if v.keep:
            assert v.details == {"cluster": s.id}
            continue
        assert v.reason == "near_duplicate" and v.duplicate_of == samples[t].id == v.details["cluster"]
        assert v.score == v.details["jaccard"] == round(exact_jaccard(s.messages[0].content, corpus[t]), 4)
        assert v.score >= threshold


def test_minhash_verification_is_close_to_exact(tmp_path, corpus):
    truth = [t >= 0 for t in greedy_truth(corpus, 0.7)]
    out = run_step("filter.near_dedup", tmp_path, [sample(t) for t in corpus], threshold=0.7,
                   scope="user_turns", verify="minhash", num_perm=256)
    got = [s.dropped for s in out]
    agree = sum(a == b for a, b in zip(got, truth)) / len(truth)
    assert agree >= 0.95
    assert all(s.verdicts[-1].details.get("method") == "minhash" for s in out if s.dropped)


def test_scope_and_char_shingles(tmp_path):
    a = sample("What is the capital of France?", "Paris is the capital.")
    b = sample("What is the capital of France?", "It is Paris, of course, a lovely city on the Seine.")
    c = sample("whats the capital of france", "Paris.")
    out = run_step("filter.near_dedup", tmp_path, [a, b, c], scope="user_turns", unit="char", ngram=4, threshold=0.7)
    assert [s.dropped for s in out] == [False, True, True]
    out = run_step("filter.near_dedup", tmp_path, [a, b], scope="assistant_turns", threshold=0.7)
    assert [s.dropped for s in out] == [False, False]


def test_exact_dedup_normalises_and_names_the_kept_sample(tmp_path):
    a, b, c = sample("Hello,   World!"), sample("hello world"), sample("Hello there")
    out = run_step("filter.exact_dedup", tmp_path, [a, b, c])
    assert [s.dropped for s in out] == [False, True, False]
    v = out[1].verdicts[-1]
    assert v.reason == "exact_duplicate" and v.duplicate_of == a.id and v.details == {"cluster": a.id}
    seeds = [Sample(meta={"question": "What is 2+2?"}), Sample(meta={"question": "What is 3+3?"}),
             Sample(meta={"question": "what is 2 + 2"})]
    assert [s.dropped for s in run_step("filter.exact_dedup", tmp_path, seeds)] == [False, False, True]


RECIPE = """\
# refinery run {path}
name: dedup-chain
shard_size: 100
workers: 2
steps:
  source: {{use: source.synthetic, n: 600, seed: 3, duplicate_rate: 0.2}}
  exact:  {{use: filter.exact_dedup, after: [source]}}
  near:   {{use: filter.near_dedup, after: [exact], threshold: 0.5, scope: user_turns, unit: char, ngram: 5}}
  final:  {{use: io.write_jsonl, after: [near]}}
"""


def test_in_a_recipe_status_shows_the_funnel_and_inspect_the_duplicate(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE.format(path=recipe))
    run_dir = tmp_path / "run"
    cli = [sys.executable, "-m", "pipelines.cli"]
    done = subprocess.run([*cli, "run", str(recipe), "--run-dir", str(run_dir), "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    status = subprocess.run([*cli, "status", str(run_dir)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    line = next(l for l in status.stdout.splitlines() if "filter.exact_dedup" in l)
    assert "exact_duplicate:" in line and "600" in line
    near = next(l for l in status.stdout.splitlines() if "filter.near_dedup" in l)
    assert "near_duplicate:" in near
    shown = subprocess.run([*cli, "inspect", str(run_dir), "--rejected", "--step", "near", "--json", "--limit", "1"],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    rejected = json.loads(shown.stdout)
    v = rejected["verdicts"][-1]
    assert v["reason"] == "near_duplicate" and v["duplicate_of"] and v["details"]["jaccard"] >= 0.5
    final = [json.loads(l)["id"] for l in (run_dir / "final.jsonl").read_text().splitlines()]
    assert v["duplicate_of"] in final
