"""The model client protocol every backend implements, and the `llm:` block that configures it.

Steps talk to `LLMClient` only. A backend turns one `Request` into `n` `Completion`s; the cache wrapper
(`pipelines.llm.cache.CachedClient`) sits in front of every backend so a resumed run never asks the model
the same request twice. Sampling is per request, and every request carries its own seed, derived by the
step from the sample's content, so results do not depend on scheduling order. Completion i of a request is
the completion at seed + i on every backend ("n is a batch of seeds").

`generate(requests)` is the batch entry point: cache hits are answered at once, misses go to the backend
together (concurrently for servers, as one batch for vLLM/transformers). Each result is either the
request's completions or a `RequestError` (see `pipelines.llm.errors`) that the step records as a drop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipelines.llm.errors import RequestError

Backend = Literal["llama_cpp", "openai", "vllm", "transformers"]
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LLMConfig(BaseModel):
    """The recipe's `llm:` block (a step may override any key with its own `llm:` block).

    Groups: what answers (backend, model, sampling: part of every fingerprint); where and how fast
    (base_url, concurrency, timeouts, retries, threads: never part of a fingerprint); what it may cost
    (prices, budgets: never part of a fingerprint, see `pipelines.core.fingerprint`).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # ---- what answers ---------------------------------------------------------------------------
    backend: Backend = Field("llama_cpp", description="which backend serves requests")
    model: str = Field(
        "embedded-qwen-0.5b",
        description="llama_cpp: GGUF path or an embedded model (embedded-qwen-0.5b, embedded-qwen-1.5b, "
                    "embedded-gemma-270m); openai: the server's model name; "
                    "vllm/transformers: a local checkpoint folder (or a hub name already in the HF cache)",
    )
    temperature: float = Field(0.8, ge=0.0, le=5.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(128, ge=1)
    seed: int = Field(0, description="base seed; each request's seed is derived from it and the sample")
    n_ctx: int = Field(2048, ge=128, description="context window (llama_cpp; max_model_len for vllm)")
    structured_output: Literal["json_schema", "json_object", "none"] = Field(
        "json_schema",
        description="openai: how a JSON schema is sent. json_schema: OpenAI's response_format (OpenAI, vLLM "
                    "serve, SGLang, llama.cpp's llama-server); json_object: {'type': 'json_object', 'schema': S} "
                    "(llama-cpp-python's server); none: not sent, output validated and retried only",
    )
    structured_retries: int = Field(
        2, ge=0, le=10, description="extra attempts (new seeds) when output fails its JSON schema")
    output_parser: Literal["none", "lfm2"] = Field(
        "none", description="lfm2: split <think> reasoning and <|tool_call_start|> calls out of the text")
    dtype: str = Field("auto", description="vllm/transformers: weights dtype (auto, bfloat16, float32, ...)")

    # ---- where and how fast (not fingerprinted) -----------------------------------------------------
    n_threads: int | None = Field(None, ge=1, description="CPU threads per worker (llama_cpp, transformers)")
    base_url: str | None = Field(None, description="openai: e.g. http://127.0.0.1:8000/v1")
    api_key_env: str | None = Field(
        None, description="openai: NAME of the environment variable holding the API key (never the key)")
    concurrency: int = Field(8, ge=1, le=1024, description="openai: requests in flight per worker process")
    timeout_s: float = Field(120.0, gt=0, description="openai: seconds per HTTP request")
    max_retries: int = Field(5, ge=0, le=50, description="openai: retries on 429/5xx/timeouts/resets")
    retry_backoff_s: float = Field(0.5, gt=0, description="openai: first backoff; doubles per retry, jittered")
    retry_max_wait_s: float = Field(30.0, gt=0, description="openai: longest single wait (Retry-After too)")
    batch_size: int = Field(16, ge=1, description="transformers: sequences per forward batch")
    device: str = Field("auto", description="transformers: auto, cpu, cuda, cuda:1, ...")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1.0, description="vllm: share of GPU memory")
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="vllm: extra keyword arguments for vllm.LLM (e.g. tensor_parallel_size)")
    ray_replicas: int | None = Field(
        None, ge=1, description="vllm/transformers: answer requests on this many engine replicas, long-lived Ray "
                                "actors (one GPU each for vllm), instead of in the step's own process")

    # ---- what it may cost (not fingerprinted) -------------------------------------------------------
    price_in_per_mtok: float | None = Field(None, ge=0, description="cost per 1M prompt tokens")
    price_out_per_mtok: float | None = Field(None, ge=0, description="cost per 1M generated tokens")
    price_per_gpu_hour: float | None = Field(None, ge=0, description="cost per hour the backend is busy")
    max_total_tokens: int | None = Field(
        None, ge=1, description="budget: tokens in+out sent to the model by the whole run directory")
    max_cost: float | None = Field(None, gt=0, description="budget: cost of the whole run directory")

    @model_validator(mode="before")
    @classmethod
    def _env_name(cls, data: Any) -> Any:
        # Refuse anything that is not a variable name, so a pasted key never lands in a recipe or run.json.
        # Checked before field validation, so the error does not echo the value (it might be a real key).
        v = data.get("api_key_env") if isinstance(data, dict) else None
        if isinstance(v, str) and not _ENV_NAME.match(v):
            raise ValueError("api_key_env must name an environment variable (e.g. OPENAI_API_KEY), not hold a key")
        return data

    @model_validator(mode="after")
    def _backend_needs(self) -> LLMConfig:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url (e.g. http://127.0.0.1:8000/v1)")
        if self.ray_replicas is not None and self.backend not in ("vllm", "transformers"):
            raise ValueError(f"ray_replicas runs the in-process engines (vllm, transformers), not {self.backend!r}")
        if self.backend in ("vllm", "transformers") and self.model.startswith("embedded-"):
            raise ValueError(f"backend {self.backend!r} needs model: a checkpoint folder; "
                             f"{self.model!r} is a GGUF for backend llama_cpp")
        return self


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
    # Tools offered to the model (OpenAI/TRL JSON schemas); chat only.
    tools: tuple[dict[str, Any], ...] | None = None

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a Request needs exactly one of prompt and messages")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")

    def cache_payload(self, model_id: str) -> dict[str, Any]:
        payload = {
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
        if self.tools is not None:  # only when set, so keys of tool-less requests stay what they were
            payload["tools"] = list(self.tools)
        return payload


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
    # With output_parser lfm2 (or a server that parses them): the think text and the tool calls
    # ([{"name": str, "arguments": dict}]), taken out of `text`.
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


# What the batch API gives back for one request.
Result = Union[list[Completion], RequestError]
# Called by a backend as each request of a batch finishes (possibly from another thread). If it raises,
# the backend starts no further request, lets those in flight finish, and re-raises.
OnResult = Callable[[int, Result], None]


class LLMClient(Protocol):
    model_id: str

    def complete(self, prompt: str, *, sampling: Sampling, n: int = 1,
                 json_schema: dict[str, Any] | None = None) -> list[Completion]: ...

    def chat(self, messages: list[dict[str, Any]], *, sampling: Sampling, n: int = 1,
             json_schema: dict[str, Any] | None = None,
             tools: list[dict[str, Any]] | None = None) -> list[Completion]: ...

    def generate(self, requests: Sequence[Request], on_result: OnResult | None = None) -> list[Result]: ...

    def stats(self) -> dict[str, float]: ...

    def close(self) -> None: ...


def request_of(prompt: str | None = None, messages: list[dict[str, Any]] | None = None, *,
               sampling: Sampling, n: int = 1, json_schema: dict[str, Any] | None = None,
               tools: list[dict[str, Any]] | None = None) -> Request:
    return Request(sampling=sampling, prompt=prompt, messages=tuple(messages) if messages is not None else None,
                   n=n, json_schema=json_schema, tools=tuple(tools) if tools is not None else None)


def unwrap(result: Result) -> list[Completion]:
    """The completions of a batch result, raising its RequestError (what complete()/chat() do)."""
    if isinstance(result, RequestError):
        raise result
    return result
