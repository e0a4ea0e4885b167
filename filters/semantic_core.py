"""SemDeDup-style semantic duplicate search over unit embeddings, without all-pairs comparison.

1. k-means (scikit-learn) splits the embeddings into k clusters (k = ceil(sqrt(n)) by default, fitted on
   a subsample when n is large);
2. each vector joins its `probes` nearest clusters (soft assignment, so near-duplicates that straddle a
   cluster border still meet in one of them);
3. in input order, a block of samples at a time, each sample is compared (matrix products) with the
   samples kept so far that share one of its clusters, and duplicates the most similar one at or above
   the threshold; otherwise it is kept and joins its clusters' kept lists.
Given the same clusters this is exactly what an all-pairs search decides (`exact_duplicates` is that
reference), so the only approximation is a pair whose two vectors share none of their `probes` nearest
clusters; bench/semantic.py measures the agreement with exact all-pairs cosine.
Cost: about probes * n * kept / k dot products; memory: the kept vectors (once per probe) and one block.
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
    pairs: int                # pairs at or above the threshold with a kept sample that were found


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
    # Random initial centroids, not k-means++: its seeding was 3.4 of the 3.9 s k-means took on 100,000
    # samples, and the soft assignment to `probes` clusters makes the search insensitive to it.
    km = KMeans(n_clusters=k, n_init=1, max_iter=50, random_state=seed, init="random").fit(emb[fit_rows])
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
    # A sequential walk (each decision depends on earlier ones) over Python lists: numpy scalar indexing
    # in this loop was 3x slower. (Rounds of vectorised decisions were tried too: duplicate chains make
    # them take dozens of rounds over millions of pairs, slower still.)
    kept_dup, kept_sim = [-1] * n, [0.0] * n
    current, decided = -1, False
    for j, i, s in zip(later[order].tolist(), earlier[order].tolist(), sims[order].tolist()):
        if j != current:
            current, decided = j, False
        if not decided and kept_dup[i] < 0:  # i was kept (it comes earlier, so it is already decided)
            kept_dup[j], kept_sim[j], decided = i, s, True
    dup[:] = kept_dup
    sim_out[:] = kept_sim
    return dup, sim_out


def semantic_duplicates(emb: np.ndarray, threshold: float, clusters: int | None = None, probes: int = 2,
                        seed: int = 0) -> SemanticResult:
    """Samples in input order, a block at a time: each is compared with the samples *kept* so far that
    share one of its clusters (earlier blocks: one matrix product per cluster; its own block: one product
    for the block), and duplicates the most similar one at or above the threshold (ties: the earliest).
    Only kept samples are ever compared against, so memory is the kept samples' vectors (once per probe)
    and one block's products, however many duplicates the input holds: an all-pairs list of a template-
    heavy 100,000-sample set held 8 million pairs (over 1 GB)."""
    n, dim = emb.shape
    k = min(clusters or default_clusters(n), max(n, 1))
    nearest, top = kmeans_assign(emb, k, probes, seed)
    dup = np.full(n, -1, dtype=np.int64)
    sim_out = np.zeros(n, dtype=np.float32)
    kept_rows: list[np.ndarray] = [np.empty(0, np.int64) for _ in range(k)]
    kept_vecs: list[np.ndarray] = [np.empty((0, dim), np.float32) for _ in range(k)]
    pairs = 0
    for start in range(0, n, _BLOCK):
        rows = np.arange(start, min(n, start + _BLOCK))
        vecs, block_top = emb[rows], top[rows]
        best = np.full(len(rows), -1, dtype=np.int64)
        best_sim = np.full(len(rows), -np.inf, dtype=np.float32)
        touched = np.unique(block_top)
        for c in touched:  # the kept samples of earlier blocks
            if not len(kept_rows[c]):
                continue
            sel = np.flatnonzero((block_top == c).any(axis=1))
            sims = vecs[sel] @ kept_vecs[c].T
            at = sims.argmax(axis=1)  # the first maximum: the earliest kept sample among equals
            top_sim = sims[np.arange(len(sel)), at]
            pairs += int((sims >= threshold).sum())
            cand = kept_rows[c][at]
            better = (top_sim >= threshold) & ((top_sim > best_sim[sel]) |
                                               ((top_sim == best_sim[sel]) & (cand < best[sel])))
            best[sel[better]], best_sim[sel[better]] = cand[better], top_sim[better]
        # Within the block: pairs (later j, earlier i) that share a cluster and reach the threshold.
        onehot = np.zeros((len(rows), k), dtype=np.float32)
        np.put_along_axis(onehot, block_top, 1.0, axis=1)
        inner = vecs @ vecs.T
        close = (inner >= threshold) & (onehot @ onehot.T > 0)
        close &= np.tri(len(rows), k=-1, dtype=bool)
        kept_here = np.zeros(len(rows), dtype=bool)
        has_close = close.any(axis=1).tolist()
        for j in range(len(rows)):
            if has_close[j]:
                earlier = np.flatnonzero(close[j, :j] & kept_here[:j])
                pairs += len(earlier)
                if len(earlier):
                    i = earlier[inner[j, earlier].argmax()]
                    if inner[j, i] > best_sim[j]:  # on a tie the earlier block's sample is earlier
                        best[j], best_sim[j] = rows[i], inner[j, i]
            if best[j] < 0:
                kept_here[j] = True
        found = best >= 0
        dup[rows[found]], sim_out[rows[found]] = best[found], best_sim[found]
        for c in touched:  # this block's kept samples join the lists of their clusters
            sel = np.flatnonzero(kept_here & (block_top == c).any(axis=1))
            if len(sel):
                kept_rows[c] = np.concatenate([kept_rows[c], rows[sel]])
                kept_vecs[c] = np.concatenate([kept_vecs[c], vecs[sel]])
    return SemanticResult(dup, sim_out, nearest, k, pairs)


def exact_duplicates(emb: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The same decisions from exact all-pairs cosine (for tests and benchmarks)."""
    later, earlier, sims = similar_pairs(emb, np.arange(emb.shape[0]), threshold)
    return greedy_keep_first(emb.shape[0], later, earlier, sims)
