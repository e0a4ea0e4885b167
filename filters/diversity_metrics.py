"""Diversity metrics over a set of samples, for a whole run and per group (generator, kind, persona
attribute, any provenance or meta key). Pure functions on texts and unit embeddings.

- Vendi score (Friedman & Dieng, 2023): exp of the Shannon entropy of the eigenvalues of K/n, K the cosine
  similarity matrix: the "effective number of distinct samples" (1 = all identical, n = all orthogonal).
  K/n and X^T X/n (X the n x d unit embeddings) share their non-zero eigenvalues, so it costs O(n d^2)
  rather than O(n^2): a few lines of numpy, which is why we do not depend on the vendi-score package.
- distinct-n: distinct word n-grams / all word n-grams of the normalised texts (lexical diversity).
- cluster coverage and balance: the run's embeddings are split into k k-means clusters (topics); a group's
  coverage is the share of clusters it reaches, its balance the normalised entropy of its samples over the
  clusters (1 = spread evenly over all k, 0 = one cluster).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from filters.normalize import words

def vendi_score(emb: np.ndarray) -> float:
    n = emb.shape[0]
    if n == 0:
        return 0.0
    x = emb.astype(np.float64)
    eig = np.linalg.eigvalsh(x.T @ x / n)
    eig = eig[eig > 1e-12]
    eig = eig / eig.sum()  # unit vectors give trace 1 already; this absorbs rounding
    return float(math.exp(-(eig * np.log(eig)).sum()))


def distinct_n(texts: list[str], n: int) -> float:
    total, seen = 0, set()
    for t in texts:
        w = words(t)
        grams = list(zip(*(w[i:] for i in range(n))))
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def coverage_balance(labels: np.ndarray, k: int) -> tuple[float, float]:
    if len(labels) == 0:
        return 0.0, 0.0
    counts = np.array(list(Counter(labels.tolist()).values()), dtype=np.float64)
    p = counts / counts.sum()
    entropy = float(-(p * np.log(p)).sum())
    return len(counts) / k, (entropy / math.log(k) if k > 1 else 1.0)


def cluster_labels(emb: np.ndarray, k: int, seed: int) -> np.ndarray:
    k = max(1, min(k, emb.shape[0]))
    if k == 1:
        return np.zeros(emb.shape[0], dtype=np.int32)
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=1, max_iter=100, random_state=seed).fit_predict(emb).astype(np.int32)


def metrics(texts: list[str], emb: np.ndarray, labels: np.ndarray, k: int) -> dict[str, Any]:
    coverage, balance = coverage_balance(labels, k)
    mean = emb.mean(axis=0) if len(emb) else np.zeros(1)
    return {
        "n": len(texts),
        "vendi": round(vendi_score(emb), 3),
        "distinct_1": round(distinct_n(texts, 1), 4),
        "distinct_2": round(distinct_n(texts, 2), 4),
        "distinct_3": round(distinct_n(texts, 3), 4),
        "cluster_coverage": round(coverage, 4),
        "cluster_balance": round(balance, 4),
        # Mean cosine over all ordered pairs, self-pairs included: |mean vector|^2. Lower is more diverse.
        "mean_cosine": round(float(mean @ mean), 4),
    }


def diversity_report(texts: list[str], emb: np.ndarray, groups: dict[str, list[str]], clusters: int,
                     seed: int = 0) -> dict[str, Any]:
    """Metrics for all texts and for every value of every group key (`groups[key][i]`: text i's value)."""
    k = max(1, min(clusters, len(texts)))
    labels = cluster_labels(emb, k, seed)
    report: dict[str, Any] = {"clusters": k, "overall": metrics(texts, emb, labels, k), "groups": {}}
    for key, values in groups.items():
        per: dict[str, Any] = {}
        for v in sorted(set(values)):
            idx = np.array([i for i, x in enumerate(values) if x == v], dtype=np.int64)
            per[v] = metrics([texts[i] for i in idx], emb[idx], labels[idx], k)
        report["groups"][key] = per
    return report
