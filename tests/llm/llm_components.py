"""Test-only step that uses the batch API the way generators should (loaded through REFINERY_PLUGINS)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from pydantic import Field

from pipelines.core.registry import register
from pipelines.core.sample import Message, Sample
from pipelines.core.step import Params, Step
from pipelines.llm.client import Request, Sampling
from pipelines.llm.errors import RequestError, as_verdict


class AnswerParams(Params):
    max_tokens: int = Field(8, ge=1)
    json_schema: dict[str, Any] | None = None


@register("test.batch_answer")
class BatchAnswer(Step):
    """Answers every sample's first user turn; the whole shard goes to the model as one batch."""

    kind = "map"
    uses_llm = True
    Params = AnswerParams

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        batch = list(samples)
        cfg = self.ctx.llm_config
        requests = [Request(sampling=Sampling(temperature=cfg["temperature"], max_tokens=self.params.max_tokens,
                                              seed=cfg["seed"] + i, stop=("\n",)),
                            prompt=f"Q: {s.messages[0].content}\nA:" if s.messages else f"Q: {s.id}\nA:",
                            json_schema=self.params.json_schema)
                    for i, s in enumerate(batch)]
        for s, result in zip(batch, self.ctx.llm.generate(requests)):
            if isinstance(result, RequestError):
                yield s.with_verdict(as_verdict(self.ctx.step_name, result))
                continue
            answer = result[0]
            yield replace(s, kind="chat", messages=[*s.messages, Message("assistant", answer.text.strip() or "-")],
                          provenance={**s.provenance, "tokens_out": answer.tokens_out, "cached": answer.cached})
