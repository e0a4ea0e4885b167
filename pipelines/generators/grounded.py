"""`generate.grounded`: tasks grounded in local documents (passages from `seeds.documents`).

Two tasks, chosen per passage (seeded by its content; `extract_share` sets the mix):
- qa:      a person (the sample's persona, if it has one) asks a question the passage answers; the answer
           is written from the passage alone. The sample is [system: the document, user: question,
           assistant: answer]; `meta.passage` keeps the source for a faithfulness check. A question that
           is not a question, repeats a few-shot example or shares no content word with the passage is
           dropped (not_a_question, copied_example, question_off_passage).
- extract: the passage's information as JSON matching `extract_schema` (a JSON Schema; a small default is built
           in), produced with schema-constrained decoding. The sample is [user: schema + text, assistant:
           the JSON]; `meta.extracted` holds the parsed object. Output the backend cannot parse or
           validate against the schema raises StructuredOutputError, which becomes a drop with reason
           `structured_output_invalid` and the raw text in its details, never an empty extraction. An
           extraction whose texts use words the passage does not (fewer than `min_support` of their content
           words) or numbers it does not write is dropped as `unsupported_extraction`
           (`pipelines.generators.support`); one whose lists repeat an item is dropped as `repeated_items`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Literal

from pydantic import Field, field_validator

from pipelines.core.registry import register
from pipelines.core.sample import Message, Sample
from pipelines.core.step import Params
from pipelines.generators import calls, turn_checks
from pipelines.generators.batch_step import BatchGenerator
from pipelines.generators.calls import Usage, drop, request_drop, run_batch, sampling
from pipelines.generators.support import repeated_items, unsupported_values
from pipelines.generators.templates import derive_seed, examples, render, template_hash
from pipelines.llm.client import Request
from pipelines.llm.errors import RequestError
from pipelines.llm.prompt_style import PromptStyled, Template, template_field

_FOLDER = "grounded"
GENERATOR = "generate.grounded"
_STOP = ("\n###", "\n\n")

DEFAULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "topic": {"type": "string", "maxLength": 80},
        "entities": {"type": "array", "items": {"type": "string", "maxLength": 60}, "minItems": 1, "maxItems": 8},
        "facts": {"type": "array", "items": {"type": "string", "maxLength": 160}, "minItems": 1, "maxItems": 3},
    },
    "required": ["topic", "entities", "facts"],
    "additionalProperties": False,
}


def _examples() -> list[dict[str, Any]]:
    return examples(f"{_FOLDER}/examples.yaml")


class GroundedParams(Params):
    task: Literal["qa", "extract", "mixed"] = Field("mixed", description="mixed: each passage gets one of the two")
    extract_share: float = Field(0.34, ge=0.0, le=1.0, description="mixed: share of passages given extraction")
    extract_schema: dict[str, Any] | None = Field(
        None, description="JSON Schema for extraction; default: topic, entities, facts")
    template: Template = template_field()
    n_examples: int = Field(2, ge=0, le=4, description="worked examples per few-shot prompt")
    min_support: float = Field(0.5, ge=0.0, le=1.0, description="extract: share of each extracted text's content "
                               "words that must occur in the passage (0 turns the check off)")
    max_question_tokens: int = Field(48, ge=8)
    max_answer_tokens: int = Field(96, ge=8)
    max_json_tokens: int = Field(256, ge=16)
    batch_size: int = Field(8, ge=1, description="samples whose requests go to the model together")

    @field_validator("extract_schema")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None:
            return None
        import jsonschema  # only when a custom schema is given

        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        if schema.get("type") != "object":
            raise ValueError("the extraction schema must describe an object ('type': 'object')")
        return schema


@register(GENERATOR)
class Grounded(PromptStyled, BatchGenerator):
    Params = GroundedParams
    prompt_folders = (_FOLDER,)

    @property
    def schema(self) -> dict[str, Any]:
        return self.params.extract_schema or DEFAULT_SCHEMA

    def task_of(self, s: Sample) -> str:
        p = self.params
        if p.task != "mixed":
            return p.task
        draw = derive_seed(self.ctx.llm_config["seed"], s.id, "task") / 0x7FFFFFFF
        return "extract" if draw < p.extract_share else "qa"

    def _batch(self, batch: list[Sample]) -> list[Sample]:
        for s in batch:
            if not s.meta.get("passage"):
                raise ValueError(f"sample {s.id} has no meta.passage: put seeds.documents before {GENERATOR}")
        usage = {s.id: Usage() for s in batch}
        done: dict[str, Sample] = {}
        tasks = {s.id: self.task_of(s) for s in batch}
        qa = [s for s in batch if tasks[s.id] == "qa"]
        ex = [s for s in batch if tasks[s.id] == "extract"]
        # One batch for the first request of every sample: questions and extractions together.
        results = run_batch(self.ctx, [self._question_request(s) for s in qa] + [self._extract_request(s) for s in ex])
        questions: dict[str, str] = {}
        for s, result in zip(qa, results[: len(qa)]):
            usage[s.id].add(result)
            text = self._text(s, result, "question", done, voice="user")
            if text is None:
                continue
            reason = self._bad_question(s, text)
            if reason:
                done[s.id] = drop(s, self.ctx, reason, question=text)
            else:
                questions[s.id] = text
        out: dict[str, Sample] = {}
        for s, result in zip(ex, results[len(qa):]):
            usage[s.id].add(result)
            if isinstance(result, RequestError):
                done[s.id] = request_drop(s, self.ctx, result, "extract")
            elif unsupported := unsupported_values(result[0].parsed, s.meta["passage"], self.params.min_support):
                done[s.id] = drop(s, self.ctx, "unsupported_extraction", unsupported=unsupported,
                                  extracted=result[0].parsed)
            elif turn_checks.foreign_script(json.dumps(result[0].parsed, ensure_ascii=False), s.meta["passage"]):
                done[s.id] = drop(s, self.ctx, "foreign_script", extracted=result[0].parsed)
            elif repeated := repeated_items(result[0].parsed):
                done[s.id] = drop(s, self.ctx, "repeated_items", lists=repeated, extracted=result[0].parsed)
            else:
                out[s.id] = self._extract_sample(s, result[0].parsed, usage[s.id])
        live = [s for s in qa if s.id in questions]
        answers = run_batch(self.ctx, [self._answer_request(s, questions[s.id]) for s in live])
        for s, result in zip(live, answers):
            usage[s.id].add(result)
            text = self._text(s, result, "answer", done, voice="assistant", asked=questions[s.id])
            if text is None:
                continue
            if calls.copies_example(text, [ex["answer"] for ex in _examples()]):
                done[s.id] = drop(s, self.ctx, "copied_example", answer=text)
            else:
                out[s.id] = self._qa_sample(s, questions[s.id], text, usage[s.id])
        return [done.get(s.id) or out[s.id] for s in batch]

    @staticmethod
    def _bad_question(s: Sample, question: str) -> str | None:
        """Why a generated question is unusable, or None: grounded QA needs a real question about this passage."""
        if not question.rstrip().endswith("?"):
            return "not_a_question"
        if calls.copies_example(question, [ex["question"] for ex in _examples()]):
            return "copied_example"
        if not calls.content_words(question) & calls.content_words(s.meta["passage"]):
            return "question_off_passage"
        return None

    # ---- requests ---------------------------------------------------------------------------------

    def _question_request(self, s: Sample) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        values = {"passage": s.meta["passage"],
                  "persona_description": calls.persona_text(s) or "A curious reader who wants a specific fact."}
        if self.style == "chat":
            msg = {"role": "user", "content": render(f"{_FOLDER}/chat_question.jinja", **values)}
            return Request(sampling(cfg, p.max_question_tokens, (), s.id, "question"), messages=(msg,))
        prompt = render(f"{_FOLDER}/fewshot_question.jinja", examples=self._shots(s, "question", _examples()),
                        **values)
        return Request(sampling(cfg, p.max_question_tokens, _STOP, s.id, "question"), prompt=prompt)

    def _answer_request(self, s: Sample, question: str) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        # Answers should stick to the passage: sample them cooler than the questions.
        smp = sampling(cfg, p.max_answer_tokens, _STOP if self.style == "fewshot" else (), s.id, question, "answer",
                       temperature=min(cfg["temperature"], 0.5))
        if self.style == "chat":
            return Request(smp, messages=tuple(m.to_dict() for m in self._qa_prompt(s, question)))
        prompt = render(f"{_FOLDER}/fewshot_answer.jinja", examples=self._shots(s, "answer", _examples()),
                        passage=s.meta["passage"], question=question)
        return Request(smp, prompt=prompt)

    def _extract_request(self, s: Sample) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        schema_json = json.dumps(self.schema, ensure_ascii=False)
        smp = sampling(cfg, p.max_json_tokens, (), s.id, "extract", temperature=min(cfg["temperature"], 0.5))
        if self.style == "chat":
            msg = {"role": "user", "content": self._extract_user(s)}
            return Request(smp, messages=(msg,), json_schema=self.schema)
        shots = [] if self.params.extract_schema is not None else [  # the examples fit the default schema only
            {**ex, "extraction_json": json.dumps(ex["extraction"], ensure_ascii=False)}
            for ex in self._shots(s, "extract", _examples())]
        prompt = render(f"{_FOLDER}/fewshot_extract.jinja", examples=shots, schema_json=schema_json,
                        passage=s.meta["passage"])
        return Request(smp, prompt=prompt, json_schema=self.schema)

    def _qa_prompt(self, s: Sample, question: str) -> list[Message]:
        return [Message("system", render(f"{_FOLDER}/system.jinja", passage=s.meta["passage"])),
                Message("user", question)]

    def _extract_user(self, s: Sample) -> str:
        return render(f"{_FOLDER}/extract_user.jinja", schema_json=json.dumps(self.schema, ensure_ascii=False),
                      passage=s.meta["passage"])

    # ---- results ----------------------------------------------------------------------------------

    def _provenance(self, s: Sample, task: str, usage: Usage) -> dict[str, Any]:
        chat = self.style == "chat"
        tname = f"{_FOLDER}/" + (("chat_question.jinja" if chat else "fewshot_question.jinja") if task == "qa"
                                 else ("extract_user.jinja" if chat else "fewshot_extract.jinja"))
        return calls.provenance(s, self.ctx, GENERATOR, tname, template_hash(tname), usage, task=task,
                                document=s.meta.get("document"))

    def _qa_sample(self, s: Sample, question: str, answer: str, usage: Usage) -> Sample:
        messages = [*self._qa_prompt(s, question), Message("assistant", answer)]
        return replace(s, kind="chat", messages=messages, provenance=self._provenance(s, "qa", usage),
                       meta={**s.meta, "task": "qa"})

    def _extract_sample(self, s: Sample, parsed: Any, usage: Usage) -> Sample:
        if parsed is None:  # a backend must raise StructuredOutputError rather than return nothing
            raise RuntimeError(f"{self.ctx.llm.model_id}: JSON-schema request returned no parsed value")
        messages = [Message("user", self._extract_user(s)),
                    Message("assistant", json.dumps(parsed, ensure_ascii=False))]
        return replace(s, kind="chat", messages=messages, provenance=self._provenance(s, "extract", usage),
                       meta={**s.meta, "task": "extract", "schema": self.schema, "extracted": parsed})
