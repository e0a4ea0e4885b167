"""Generated text with near-duplicates of known Jaccard similarity (word 3-gram shingles), for the dedup
tests and bench/dedup.py."""

from __future__ import annotations

import random

from filters.normalize import shingles

VOCAB = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ra", "si", "tu", "va", "zo", "be", "do", "fi", "gu")
         for b in ("rin", "mak", "tol", "sen", "dup", "vix", "lor", "nam", "pey", "qua", "bri", "chu", "dov", "fel")]


def base_text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n_words))


def edit(rng: random.Random, text: str, n_edits: int) -> str:
    """Replace n_edits words at random positions with random words (each touches up to 3 shingles)."""
    w = text.split()
    for i in rng.sample(range(len(w)), min(n_edits, len(w))):
        w[i] = rng.choice(VOCAB) + "x"  # never equal to a vocabulary word, so every edit changes shingles
    return " ".join(w)


def exact_jaccard(a: str, b: str, n: int = 3) -> float:
    sa, sb = shingles(a, n), shingles(b, n)
    return len(sa & sb) / len(sa | sb)


def greedy_truth(texts: list[str], threshold: float, n: int = 3) -> list[int]:
    """For each text, the index of the earlier kept text it duplicates (most similar), or -1. Brute force."""
    sets = [shingles(t, n) for t in texts]
    kept: list[int] = []
    out = []
    for j, sj in enumerate(sets):
        best, best_sim = -1, -1.0
        for i in kept:
            inter = len(sj & sets[i])
            sim = inter / (len(sj) + len(sets[i]) - inter)
            if sim >= threshold and sim > best_sim:
                best, best_sim = i, sim
        out.append(best)
        if best < 0:
            kept.append(j)
    return out
