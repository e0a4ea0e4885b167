"""Shared plumbing of the in-process batch backends (vLLM offline, transformers).

A batch of requests becomes a flat list of single-seed items (request j, completion i at seed + i), which
the subclass generates in one go (`_run`). Structured output is validated per item; items that fail are
generated again at derived seeds, in rounds, at most `structured_retries` times (see
`pipelines.llm.structured`). LFM2 reasoning and tool calls are split out of the text when
`output_parser: lfm2`. Requests are handled in chunks so each chunk's answers reach `on_result` (and so
the cache and the budget) while the next chunk runs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.llm.client import Completion, LLMConfig, OnResult, Request, Result
from pipelines.llm.errors import RequestError, StructuredOutputError
from pipelines.llm.single import SingleRequests
from pipelines.llm.structured import gave_up, parse_structured, request_seed, retry_seed


@dataclass(frozen=True, slots=True)
class Item:
    request: Request
    seed: int


class BatchBackend(SingleRequests):
    model_id: str
    # Requests per chunk handed to _run (None: the whole batch; vLLM schedules it better than we could).
    chunk: int | None = None

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self._stats: Counter = Counter(requests=0, model_calls=0, tokens_in=0, tokens_out=0, failures=0)

    # ---- subclass hooks ---------------------------------------------------------------------------

    def _run(self, items: list[Item]) -> list[Completion]:
        """Raw completions (text, token counts, finish reason; nothing validated), one per item, in order."""
        raise NotImplementedError

    # ---- LLMClient --------------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request], on_result: OnResult | None = None) -> list[Result]:
        results: list[Result] = []
        step = self.chunk or max(1, len(requests))
        for start in range(0, len(requests), step):
            part = list(requests[start:start + step])
            for j, res in enumerate(self._generate_chunk(part), start):
                results.append(res)
                if on_result is not None:
                    on_result(j, res)  # may raise (budget): later chunks are then never generated
        return results

    def _generate_chunk(self, requests: list[Request]) -> list[Result]:
        self._stats["requests"] += len(requests)
        self._stats["model_calls"] += len(requests)
        slots = [(j, i) for j, r in enumerate(requests) for i in range(r.n)]
        items = [Item(requests[j], request_seed(requests[j].sampling.seed, i)) for j, i in slots]
        done: dict[tuple[int, int], Completion | RequestError] = {}
        spent: Counter = Counter()  # (j, i) -> tokens of discarded attempts, in and out
        pending = list(range(len(slots)))
        attempts = 1 + self.config.structured_retries
        for attempt in range(attempts):
            batch = [items[k] if attempt == 0 else Item(items[k].request, retry_seed(items[k].seed, attempt))
                     for k in pending]
            t0 = time.perf_counter()
            outs = self._run(batch)
            share = (time.perf_counter() - t0) / max(1, len(batch))
            retry = []
            for k, item, c in zip(pending, batch, outs):
                c.latency_s = c.latency_s or share
                c.extra["seed"] = item.seed
                self._stats["tokens_in"] += c.tokens_in
                self._stats["tokens_out"] += c.tokens_out
                outcome = self._finish(item.request, c)
                if isinstance(outcome, StructuredOutputError) and attempt + 1 < attempts:
                    retry.append(k)
                    spent[(k, "in")] += c.tokens_in
                    spent[(k, "out")] += c.tokens_out
                    self._stats["structured_retries"] += 1
                    continue
                if isinstance(outcome, StructuredOutputError):
                    outcome = gave_up(outcome, attempts, spent[(k, "in")] + c.tokens_in,
                                      spent[(k, "out")] + c.tokens_out)
                elif attempt and isinstance(outcome, Completion):
                    outcome.extra.update(attempts=attempt + 1, discarded_tokens_in=spent[(k, "in")],
                                         discarded_tokens_out=spent[(k, "out")])
                done[slots[k]] = outcome
            pending = retry
            if not pending:
                break
        results: list[Result] = []
        for j, r in enumerate(requests):
            outs = [done[(j, i)] for i in range(r.n)]
            err = next((o for o in outs if isinstance(o, RequestError)), None)
            if err is not None:
                self._stats["failures"] += 1
                err.tokens_in += sum(o.tokens_in for o in outs if isinstance(o, Completion))
                err.tokens_out += sum(o.tokens_out for o in outs if isinstance(o, Completion))
                results.append(err)
            else:
                results.append(outs)  # type: ignore[arg-type]
        return results

    def _finish(self, req: Request, c: Completion) -> Completion | RequestError:
        """Parse LFM2 structure and validate the schema; a RequestError if the output is unusable."""
        try:
            if self.config.output_parser == "lfm2":
                from pipelines.llm.lfm2_output import split_output

                c.text, c.reasoning, c.tool_calls = split_output(c.text, tools_offered=bool(req.tools))
            if req.json_schema is not None:
                c.parsed = parse_structured(c.text, req.json_schema, c.finish_reason)
        except RequestError as exc:
            exc.tokens_in, exc.tokens_out = c.tokens_in, c.tokens_out
            return exc
        return c

    def render(self, tokenizer: Any, req: Request) -> str:
        """The prompt text for one request: as given, or the chat rendered by the model's own template."""
        if req.prompt is not None:
            return req.prompt
        kwargs = {"tools": list(req.tools)} if req.tools else {}
        return tokenizer.apply_chat_template(list(req.messages), tokenize=False, add_generation_prompt=True,
                                             **kwargs)

    def stats(self) -> dict[str, float]:
        return dict(self._stats)
