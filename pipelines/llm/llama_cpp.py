"""The embedded backend: llama.cpp in-process, via llama-cpp-python.

Reproducibility is the point of this module. llama-cpp-python keeps the previous request's tokens in the
KV cache and, on the next request, re-evaluates only the part of the prompt that differs. The logits of a
token evaluated in a different batch differ in the last bits, so the same (prompt, seed) can sample
different text depending on what was asked before (measured: ~40% of repeated requests diverged after an
intervening request that shared a long prefix). We therefore `reset()` the model before every generation:
each request evaluates its whole prompt from an empty cache and depends on nothing but its own content.
The price is re-evaluating shared prefixes, which is small next to generation on a 270M model.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from pipelines.llm.client import Completion, LLMConfig, OnResult, Request, Result, Sampling
from pipelines.llm.embedded import resolve_model
from pipelines.llm.errors import RequestError, RequestRejected, StructuredOutputError
# request_seed: re-exported; llama.cpp treats seed 0xFFFFFFFF as "random", which request_seed never returns.
from pipelines.llm.structured import gave_up, parse_structured, request_seed, retry_seed  # noqa: F401
# Pinned here rather than inherited from the library's defaults, so an upgrade cannot silently change outputs.
_TOP_K = 40
_MIN_P = 0.05
_REPEAT_PENALTY = 1.0


def default_n_threads() -> int:
    """Cores this process may use, divided among the workers that run beside it (REFINERY_WORKERS, which
    the executors set). Without it the process is alone (`refinery eval`, a bench, a notebook) and takes
    every core: one thread decoded the 0.5B teacher at 14 tok/s here, two at 24."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = int(os.environ.get("REFINERY_WORKERS", "0")) or 1
    return max(1, cores // workers)


def _merge_system_message(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Gemma has no system role, and llama-cpp-python's "gemma" format silently drops system messages;
    # Gemma's own template prepends the system text to the first user turn, so we do the same.
    if not messages or messages[0].get("role") != "system":
        return messages
    system, rest = messages[0]["content"], list(messages[1:])
    if rest and rest[0].get("role") == "user":
        rest[0] = {**rest[0], "content": f"{system}\n\n{rest[0]['content']}"}
        return rest
    return [{"role": "user", "content": system}, *rest]


class LlamaCppClient:
    """LLMClient backed by a GGUF model in this process. The model loads on the first request."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        # Resolving (and for the embedded model, assembling and verifying) happens now, because the
        # cache key needs model_id before anything is generated; loading the weights waits.
        self.model_path, sha256 = resolve_model(config.model)
        self.model_id = f"llama_cpp:{self.model_path.name}:{sha256[:16]}"
        self.n_threads = config.n_threads or default_n_threads()
        self._llm: Any = None
        self._grammars: dict[str, Any] = {}
        self._stats: Counter = Counter(
            requests=0, cache_hits=0, model_calls=0, tokens_in=0, tokens_out=0, failures=0
        )

    def _model(self) -> Any:
        if self._llm is None:
            import llama_cpp

            t0 = time.perf_counter()
            self._llm = llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=self.config.n_ctx,
                n_threads=self.n_threads,
                # Prompt evaluation too: its default (all cores) spin-waits against the other workers.
                n_threads_batch=self.n_threads,
                seed=self.config.seed,
                verbose=False,
                logits_all=False,
            )
            self.load_s = time.perf_counter() - t0
            # A GGUF without a chat template falls back to llama-2's [INST] format, which a Gemma model
            # answers with an immediate end-of-turn; use Gemma's own turn markers instead.
            if "tokenizer.chat_template" not in self._llm.metadata and \
                    self._llm.metadata.get("general.architecture", "").startswith("gemma"):
                self._llm.chat_format = "gemma"
                self._llm.chat_handler = None
        return self._llm

    def _grammar(self, schema: dict[str, Any]) -> Any:
        import llama_cpp

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        return self._grammars[key]

    def complete(self, prompt: str, *, sampling: Sampling, n: int = 1,
                 json_schema: dict[str, Any] | None = None) -> list[Completion]:
        grammar = self._grammar(json_schema) if json_schema is not None else None

        def one(seed: int) -> tuple[str, dict[str, Any]]:
            resp = self._model().create_completion(
                prompt, grammar=grammar, seed=seed, **self._sampling_kwargs(sampling))
            return resp["choices"][0]["text"], resp

        return self._generate(one, sampling, n, json_schema)

    def chat(self, messages: list[dict[str, Any]], *, sampling: Sampling, n: int = 1,
             json_schema: dict[str, Any] | None = None,
             tools: list[dict[str, Any]] | None = None) -> list[Completion]:
        response_format = {"type": "json_object", "schema": json_schema} if json_schema is not None else None
        tool_kwargs = {"tools": list(tools)} if tools else {}

        def one(seed: int) -> tuple[str, dict[str, Any]]:
            llm = self._model()
            msgs = _merge_system_message(list(messages)) if llm.chat_format == "gemma" else list(messages)
            resp = llm.create_chat_completion(
                msgs, response_format=response_format, seed=seed, **tool_kwargs, **self._sampling_kwargs(sampling))
            return resp["choices"][0]["message"]["content"] or "", resp

        return self._generate(one, sampling, n, json_schema)

    @staticmethod
    def _sampling_kwargs(sampling: Sampling) -> dict[str, Any]:
        return {
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": _TOP_K,
            "min_p": _MIN_P,
            "repeat_penalty": _REPEAT_PENALTY,
            "stop": list(sampling.stop) or None,
        }

    def _generate(self, one: Callable[[int], tuple[str, dict[str, Any]]], sampling: Sampling, n: int,
                  json_schema: dict[str, Any] | None) -> list[Completion]:
        self._stats["requests"] += 1
        self._stats["model_calls"] += 1
        try:
            return [self._one_validated(one, request_seed(sampling.seed, i), json_schema) for i in range(n)]
        except Exception:
            self._stats["failures"] += 1
            raise

    def _one_validated(self, one: Callable[[int], tuple[str, dict[str, Any]]], seed: int,
                       json_schema: dict[str, Any] | None) -> Completion:
        """One completion; with a schema, bounded retries at derived seeds (see pipelines.llm.structured)."""
        discarded_in = discarded_out = 0
        attempts = 1 + (self.config.structured_retries if json_schema is not None else 0)
        for attempt in range(attempts):
            s = seed if attempt == 0 else retry_seed(seed, attempt)
            # Forget the previous request's KV cache: see the module docstring.
            self._model().reset()
            t0 = time.perf_counter()
            try:
                text, resp = one(s)
            except ValueError as exc:
                # llama.cpp refuses a prompt longer than the context with a ValueError: that is this one
                # request's failure (a drop with a reason), as an HTTP server's 400 is, not the model's.
                if "context window" not in str(exc):
                    raise
                raise RequestRejected("", f"{exc} (n_ctx={self.config.n_ctx})") from exc
            latency = time.perf_counter() - t0
            usage, finish = resp["usage"], resp["choices"][0]["finish_reason"] or "stop"
            self._stats["tokens_in"] += usage["prompt_tokens"]
            self._stats["tokens_out"] += usage["completion_tokens"]
            c = Completion(text=text, tokens_in=usage["prompt_tokens"], tokens_out=usage["completion_tokens"],
                           latency_s=latency, finish_reason=finish, extra={"seed": s})
            if json_schema is None:
                return c
            try:
                c.parsed = parse_structured(text, json_schema, finish)
            except StructuredOutputError as exc:
                last = exc
                discarded_in += c.tokens_in
                discarded_out += c.tokens_out
                if attempt + 1 < attempts:
                    self._stats["structured_retries"] += 1
                continue
            if attempt:
                c.extra.update(attempts=attempt + 1, discarded_tokens_in=discarded_in,
                               discarded_tokens_out=discarded_out)
            return c
        raise gave_up(last, attempts, discarded_in, discarded_out)

    def generate(self, requests: Sequence[Request], on_result: OnResult | None = None) -> list[Result]:
        """One request after another (one in-process model has no concurrency to offer)."""
        results: list[Result] = []
        for j, r in enumerate(requests):
            try:
                if r.prompt is not None:
                    res: Result = self.complete(r.prompt, sampling=r.sampling, n=r.n, json_schema=r.json_schema)
                else:
                    res = self.chat(list(r.messages), sampling=r.sampling, n=r.n, json_schema=r.json_schema,
                                    tools=list(r.tools) if r.tools is not None else None)
            except RequestError as exc:
                res = exc
            results.append(res)
            if on_result is not None:
                on_result(j, res)
        return results

    def stats(self) -> dict[str, int]:
        return dict(self._stats)

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
