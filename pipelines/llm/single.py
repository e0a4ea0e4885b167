"""complete() and chat() for clients whose generate() already handles batches: each is a batch of one."""

from __future__ import annotations

from typing import Any

from pipelines.llm.client import Completion, Sampling, request_of, unwrap


class SingleRequests:
    """Mixin; the class it is mixed into supplies generate()."""

    def complete(self, prompt: str, *, sampling: Sampling, n: int = 1,
                 json_schema: dict[str, Any] | None = None) -> list[Completion]:
        return unwrap(self.generate([request_of(prompt, sampling=sampling, n=n, json_schema=json_schema)])[0])

    def chat(self, messages: list[dict[str, Any]], *, sampling: Sampling, n: int = 1,
             json_schema: dict[str, Any] | None = None,
             tools: list[dict[str, Any]] | None = None) -> list[Completion]:
        req = request_of(messages=messages, sampling=sampling, n=n, json_schema=json_schema, tools=tools)
        return unwrap(self.generate([req])[0])
