"""LLM judge: a model grades each sample from 1 to 5 on a rubric; the score is the verdict's score and
samples below `threshold` are dropped with the model's one-line reason.

Any backend of the LLM layer works (`self.ctx.llm`); the grade is structured output, constrained by a JSON
schema where the backend can (llama.cpp grammars, vLLM, OpenAI-compatible servers) and validated always.
Two prompt styles, as for the generators: `fewshot` for base models (the embedded Gemma 3 270M): graded
example conversations, then this one, continued as JSON; `chat` for instruct models: a system prompt with
the rubric. A grade the model cannot produce (after the backend's bounded retries) is a drop whose verdict
keeps the raw text (`structured_output_invalid`), never a silent pass. Prompts live in prompts/judge/.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from filters.base import Filter
from filters.templates import files_in, load_yaml, render, template_hash
from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params
from pipelines.llm.prompt_style import PromptStyled, Template, template_field

_FOLDER = "judge"
_BATCH = 16  # requests handed to the backend together (servers answer them concurrently)
SCALE = (1, 5)
GRADE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reason": {"type": "string", "minLength": 1, "maxLength": 160},
        "score": {"type": "integer", "minimum": SCALE[0], "maximum": SCALE[1]},
    },
    "required": ["reason", "score"],
    "additionalProperties": False,
}


class JudgeParams(Params):
    rubric: str = Field("helpfulness", description="a built-in rubric (helpfulness, correctness, tool_use, faithfulness) or the "
                                                     "rubric text")
    threshold: float = Field(3.0, ge=SCALE[0], le=SCALE[1], description="lowest score kept (1-5)")
    template: Template = template_field()
    n_examples: int = Field(3, ge=0, le=5, description="graded examples in the few-shot prompt")
    temperature: float | None = Field(0.0, ge=0.0, le=2.0, description="sampling temperature (null: the llm block's)")
    max_tokens: int = Field(96, ge=16, description="tokens for the JSON grade")
    max_chars: int = Field(3000, ge=200, description="the conversation is cut to this many characters")


def render_conversation(s: Sample, max_chars: int) -> str:
    # A grounded sample's source (its system prompt, skipped below) is what faithfulness is judged against.
    lines = [f"Source document: {s.meta['passage']}"] if s.meta.get("passage") else []
    for m in s.messages:
        if m.role == "system":
            continue
        text = m.content
        if m.reasoning:
            text = f"(thinking: {m.reasoning}) {text}"
        if m.tool_calls:
            text += " " + " ".join(f"[calls {c.name}({c.arguments})]" for c in m.tool_calls)
        lines.append(f"{'Tool result' if m.role == 'tool' else m.role.capitalize()}: {text.strip()}")
    out = "\n".join(lines)
    return out if len(out) <= max_chars else out[:max_chars] + " [...]"


@register("filter.judge")
class Judge(PromptStyled, Filter):
    Params = JudgeParams
    uses_llm = True

    @classmethod
    def fingerprint_files(cls) -> list:
        return [*super().fingerprint_files(), *files_in(_FOLDER)]

    def _rubric(self) -> tuple[str, str]:
        builtin = load_yaml(f"{_FOLDER}/rubrics.yaml")
        name = self.params.rubric
        return (name, builtin[name]) if name in builtin else ("custom", name)

    def _request(self, s: Sample) -> Any:
        from pipelines.llm.client import Sampling, request_of

        p, cfg = self.params, self.ctx.llm_config
        _, rubric = self._rubric()
        seed = int.from_bytes(hashlib.sha256(f"{cfg['seed']}:{s.id}:judge".encode()).digest()[:4], "little") & 0x7FFFFFFF
        sampling = Sampling(temperature=cfg["temperature"] if p.temperature is None else p.temperature,
                            top_p=cfg["top_p"], max_tokens=p.max_tokens, seed=seed)
        conversation = render_conversation(s, p.max_chars)
        if self.style == "fewshot":
            examples = load_yaml(f"{_FOLDER}/examples.yaml")[: p.n_examples]
            prompt = render(f"{_FOLDER}/fewshot.jinja", rubric=rubric, examples=examples, conversation=conversation)
            return request_of(prompt, sampling=sampling, json_schema=GRADE_SCHEMA)
        system = render(f"{_FOLDER}/chat.jinja", rubric=rubric)
        messages = [{"role": "system", "content": system},
                    {"role": "user", "content": f"Grade this conversation:\n\n{conversation}"}]
        return request_of(messages=messages, sampling=sampling, json_schema=GRADE_SCHEMA)

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        batch: list[Sample] = []
        for s in samples:
            batch.append(s)
            if len(batch) >= _BATCH:
                yield from self._grade(batch)
                batch = []
        yield from self._grade(batch)

    def _grade(self, batch: list[Sample]) -> Iterator[Sample]:
        from pipelines.llm.errors import RequestError, as_verdict

        if not batch:
            return
        p = self.params
        rubric_name, _ = self._rubric()
        tname = f"{_FOLDER}/{self.style}.jinja"
        results = self.ctx.llm.generate([self._request(s) for s in batch])
        for s, res in zip(batch, results):
            if isinstance(res, RequestError):
                yield s.with_verdict(as_verdict(self.ctx.step_name, res))
                continue
            grade = res[0].parsed
            score = float(grade["score"])
            keep = score >= p.threshold
            details = {"reason": grade["reason"], "rubric": rubric_name, "template": tname,
                       "template_hash": template_hash(tname), "model": self.ctx.llm.model_id,
                       "cached": bool(res[0].cached)}
            yield s.with_verdict(self.verdict(keep, "" if keep else "low_judge_score", score=score, details=details))
