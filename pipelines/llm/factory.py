"""Build a step's model client from its resolved `llm:` block."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.llm.client import LLMClient, LLMConfig

# Each constructor imports its backend module only when called, so importing the factory (and validating
# a recipe) never imports llama_cpp, httpx, torch or vllm.


def _llama_cpp(config: LLMConfig) -> LLMClient:
    from pipelines.llm.llama_cpp import LlamaCppClient

    return LlamaCppClient(config)


def _openai(config: LLMConfig) -> LLMClient:
    from pipelines.llm.openai_compat import OpenAICompatClient

    return OpenAICompatClient(config)


def _vllm(config: LLMConfig) -> LLMClient:
    from pipelines.llm.vllm_offline import VLLMClient

    return _maybe_ray_replicas(VLLMClient, config)


def _transformers(config: LLMConfig) -> LLMClient:
    from pipelines.llm.transformers_backend import TransformersClient

    return _maybe_ray_replicas(TransformersClient, config)


def _maybe_ray_replicas(engine: type, config: LLMConfig) -> LLMClient:
    if config.ray_replicas is None:
        return engine(config)
    from pipelines.llm.ray_replicas import RayReplicasClient

    return RayReplicasClient(engine, config)


# Backend name (LLMConfig.backend) -> constructor. A new backend adds one entry here and one Literal value.
BACKENDS: dict[str, Callable[[LLMConfig], LLMClient]] = {
    "llama_cpp": _llama_cpp,
    "openai": _openai,
    "vllm": _vllm,
    "transformers": _transformers,
}


def build_client(config: dict[str, Any], cache_path: Path | None = None, own_part: bool = False) -> LLMClient:
    """Validate `config`, build its backend, and put the request cache in front when `cache_path` is given
    (`own_part`: this process writes a cache part of its own, as workers on a cluster do)."""
    cfg = LLMConfig(**config)
    try:
        constructor = BACKENDS[cfg.backend]
    except KeyError:
        raise ValueError(f"unknown llm backend {cfg.backend!r}; known: {sorted(BACKENDS)}") from None
    backend = constructor(cfg)
    if cache_path is None:
        return backend
    from pipelines.llm.cache import CachedClient

    return CachedClient(backend, cache_path, cfg, own_part=own_part)
