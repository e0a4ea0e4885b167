"""SemDeDup-style semantic duplicate search over unit embeddings, without all-pairs comparison.

1. k-means (scikit-learn) splits the embeddings into k clusters (k = ceil(sqrt(n)) by default, fitted on
   a subsample when n is large);
2. each vector joins its `probes` nearest clusters (soft assignment, so near-duplicates that straddle a
   cluster border still meet in one of them);
3. within each cluster, blocked matrix products find every pair with cosine >= threshold;
4. a greedy pass in input order keeps a sample unless it is that similar to an earlier *kept* sample,
   which it then duplicates (the most similar one).
Step 4 is exactly what an all-pairs search would decide given the same pairs, so the only approximation is
a pair whose two vectors share none of their `probes` nearest clusters; bench/semantic.py measures the
agreement with exact all-pairs cosine.
Cost: about (probes * n)^2 / k dot products instead of n^2 / 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_BLOCK = 1024          # rows per similarity block: bounds the temporary matrix to BLOCK x cluster size
_FIT_PER_CLUSTER = 64  # k-means is fitted on at most this many points per cluster (and at least 10,000)
_ALL_PAIRS_BELOW = 2048  # small inputs: one cluster, i.e. exact all-pairs


@dataclass
class SemanticResult:
    duplicate_of: np.ndarray  # int64, -1 where the sample is kept
    similarity: np.ndarray    # float32, cosine to the sample it duplicates (0 where kept)
    cluster: np.ndarray       # int32, nearest k-means cluster
    k: int
    pairs: int                # pairs at or above the threshold that were found


def default_clusters(n: int) -> int:
    return 1 if n < _ALL_PAIRS_BELOW else math.ceil(math.sqrt(n))


def kmeans_assign(emb: np.ndarray, k: int, probes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(nearest cluster per row, the `probes` nearest clusters per row) for unit vectors."""
    n = emb.shape[0]
    if k <= 1 or n <= k:
        return np.zeros(n, dtype=np.int32), np.zeros((n, 1), dtype=np.int32)
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    fit_n = min(n, max(10_000, _FIT_PER_CLUSTER * k))
    fit_rows = np.sort(rng.choice(n, fit_n, replace=False)) if fit_n < n else slice(None)
    km = KMeans(n_clusters=k, n_init=1, max_iter=50, random_state=seed).fit(emb[fit_rows])
    centroids = km.cluster_centers_.astype(np.float32)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    probes = max(1, min(probes, k))
    top = np.empty((n, probes), dtype=np.int32)
    for start in range(0, n, 8192):
        scores = emb[start:start + 8192] @ centroids.T
        part = np.argpartition(-scores, probes - 1, axis=1)[:, :probes]
        order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
        top[start:start + 8192] = np.take_along_axis(part, order, axis=1)
    return top[:, 0].copy(), top


def similar_pairs(emb: np.ndarray, members: np.ndarray, threshold: float) -> tuple[np.ndarray, ...]:
    """All (later, earlier, cosine) pairs among `members` (sorted row indices) with cosine >= threshold."""
    later, earlier, sims = [], [], []
    vecs = emb[members]
    for start in range(0, len(members), _BLOCK):
        block = vecs[start:start + _BLOCK] @ vecs.T  # rows: members[start:...], columns: all members
        rows, cols = np.nonzero(block >= threshold)
        keep = cols < rows + start  # only earlier samples (members are sorted, so position order = input order)
        rows, cols = rows[keep], cols[keep]
        later.append(members[rows + start])
        earlier.append(members[cols])
        sims.append(block[rows, cols])
    if not later:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return np.concatenate(later), np.concatenate(earlier), np.concatenate(sims)


def greedy_keep_first(n: int, later: np.ndarray, earlier: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walk samples in input order: a sample with a pair to an earlier kept sample duplicates the most
    similar such sample (ties: the earliest); otherwise it is kept."""
    dup = np.full(n, -1, dtype=np.int64)
    sim_out = np.zeros(n, dtype=np.float32)
    if len(later) == 0:
        return dup, sim_out
    order = np.lexsort((earlier, -sims, later))  # by later, then most similar first, then earliest
    later, earlier, sims = later[order], earlier[order], sims[order]
    bounds = np.flatnonzero(np.diff(later)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(later)]):
        j = later[lo]
        for e in range(lo, hi):
            i = earlier[e]
            if dup[i] < 0:  # i was kept (it comes earlier, so it is already decided)
                dup[j] = i
                sim_out[j] = sims[e]
                break
    return dup, sim_out


def semantic_duplicates(emb: np.ndarray, threshold: float, clusters: int | None = None, probes: int = 2,
                        seed: int = 0) -> SemanticResult:
    n = emb.shape[0]
    k = min(clusters or default_clusters(n), max(n, 1))
    nearest, top = kmeans_assign(emb, k, probes, seed)
    # Inverted lists: the rows of each cluster, ascending (a stable sort keeps row order within a cluster).
    rows = np.repeat(np.arange(n), top.shape[1])
    order = np.argsort(top.ravel(), kind="stable")
    cuts = np.searchsorted(top.ravel()[order], np.arange(1, max(k, 1)))
    parts = []
    for members in np.split(rows[order], cuts):
        if len(members) > 1:
            parts.append(similar_pairs(emb, members, threshold))
    if parts:
        later, earlier, sims = (np.concatenate(x) for x in zip(*parts))
        if len(later):
            # A pair found in two shared clusters counts once.
            uniq = np.unique(later.astype(np.int64) * n + earlier, return_index=True)[1]
            later, earlier, sims = later[uniq], earlier[uniq], sims[uniq]
    else:
        later = earlier = np.empty(0, np.int64)
        sims = np.empty(0, np.float32)
    dup, sim = greedy_keep_first(n, later, earlier, sims)
    return SemanticResult(dup, sim, nearest, k, int(len(later)))


def exact_duplicates(emb: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The same decisions from exact all-pairs cosine (for tests and benchmarks)."""
    later, earlier, sims = similar_pairs(emb, np.arange(emb.shape[0]), threshold)
    return greedy_keep_first(emb.shape[0], later, earlier, sims)
