"""The model client protocol every backend implements, and the `llm:` block that configures it.

Steps talk to `LLMClient` only. A backend turns one `Request` into `n` `Completion`s; the cache wrapper
(`pipelines.llm.cache.CachedClient`) sits in front of every backend so a resumed run never asks the model
the same request twice. Sampling is per request, and every request carries its own seed, derived by the
step from the sample's content, so results do not depend on scheduling order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field


class LLMConfig(BaseModel):
    """The recipe's `llm:` block (a step may override any key with its own `llm:` block)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    backend: Literal["llama_cpp"] = Field("llama_cpp", description="which backend serves requests")
    model: str = Field(
        "embedded-gemma-270m",
        description="model name or path; 'embedded-gemma-270m' is the GGUF shipped by the PyPI package",
    )
    temperature: float = Field(0.8, ge=0.0, le=5.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(128, ge=1)
    seed: int = Field(0, description="base seed; each request's seed is derived from it and the sample")
    n_ctx: int = Field(2048, ge=128, description="context window (llama_cpp)")
    n_threads: int | None = Field(None, ge=1, description="CPU threads per worker (llama_cpp); default: cores / workers")


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 128
    stop: tuple[str, ...] = ()
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Request:
    """One model call. Exactly one of `prompt` (completion) and `messages` (chat) is set."""

    sampling: Sampling
    prompt: str | None = None
    messages: tuple[dict[str, Any], ...] | None = None
    n: int = 1
    # A JSON schema the output must match; backends constrain decoding with it where they can.
    json_schema: dict[str, Any] | None = None

    def cache_payload(self, model_id: str) -> dict[str, Any]:
        return {
            "model": model_id,
            "prompt": self.prompt,
            "messages": list(self.messages) if self.messages is not None else None,
            "n": self.n,
            "json_schema": self.json_schema,
            "sampling": {
                "temperature": self.sampling.temperature,
                "top_p": self.sampling.top_p,
                "max_tokens": self.sampling.max_tokens,
                "stop": list(self.sampling.stop),
                "seed": self.sampling.seed,
            },
        }


@dataclass(slots=True)
class Completion:
    text: str
    tokens_in: int
    tokens_out: int
    latency_s: float
    finish_reason: str = "stop"
    # Parsed JSON when the request had a json_schema and the text parsed and validated.
    parsed: Any = None
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class LLMClient(Protocol):
    model_id: str

    def complete(self, prompt: str, *, sampling: Sampling, n: int = 1,
                 json_schema: dict[str, Any] | None = None) -> list[Completion]: ...

    def chat(self, messages: list[dict[str, Any]], *, sampling: Sampling, n: int = 1,
             json_schema: dict[str, Any] | None = None) -> list[Completion]: ...

    def stats(self) -> dict[str, int]: ...

    def close(self) -> None: ...
