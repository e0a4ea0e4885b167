"""Build a step's model client from its resolved `llm:` block."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.llm.client import LLMClient, LLMConfig


def _llama_cpp(config: LLMConfig) -> LLMClient:
    # Imported here so that importing the factory does not import llama_cpp (and its native library).
    from pipelines.llm.llama_cpp import LlamaCppClient

    return LlamaCppClient(config)


# Backend name (LLMConfig.backend) -> constructor. A new backend adds one entry here and one Literal value.
BACKENDS: dict[str, Callable[[LLMConfig], LLMClient]] = {
    "llama_cpp": _llama_cpp,
}


def build_client(config: dict[str, Any], cache_path: Path | None = None) -> LLMClient:
    """Validate `config`, build its backend, and put the request cache in front when `cache_path` is given."""
    cfg = LLMConfig(**config)
    try:
        constructor = BACKENDS[cfg.backend]
    except KeyError:
        raise ValueError(f"unknown llm backend {cfg.backend!r}; known: {sorted(BACKENDS)}") from None
    backend = constructor(cfg)
    if cache_path is None:
        return backend
    from pipelines.llm.cache import CachedClient

    return CachedClient(backend, cache_path)
