"""`generate.candidates`: n alternative answers to a sample's last user turn, for preference data.

Usable after any generator. The prompt is the conversation up to its last user (or tool) turn; the
sample's own final assistant turn, when it has one, is kept as candidate 0 (`include_original`), and `n`
new candidates follow, candidate i sampled at `temperatures[i % len]` with prompt style `styles[i % len]`
(a different preamble: concise, detailed, plain), each with its own seed derived from the sample and i.
Every candidate carries its provenance (generator, template and hash, style, temperature, seed, model,
tokens). The sample's kind becomes "preference"; its messages are unchanged, so the original answer stays
usable for SFT, and exporters read the prompt as the messages without their trailing assistant turn.

Reasoning samples get reasoning candidates (reasoning and answer stored apart, as `generate.reasoning`
writes them); JSON-extraction samples (meta.schema) get schema-constrained candidates, from the grounded
extraction prompt when the sample carries its passage. A candidate request
that fails (e.g. StructuredOutputError) drops the sample with that reason and the raw text; a final turn
that is a tool call is not supported here and is dropped with reason `candidates_for_tool_call`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from typing import Any

from pydantic import Field, field_validator

from pipelines.core.registry import register
from pipelines.core.sample import Candidate, Message, Sample
from pipelines.core.step import Params
from pipelines.generators import grounded, reasoning
from pipelines.generators.batch_step import BatchGenerator
from pipelines.generators.calls import Usage, drop, request_drop, run_batch, sampling, tidy
from pipelines.generators.templates import PROMPTS, derive_seed, examples, render, template_hash
from pipelines.llm.client import Request
from pipelines.llm.errors import RequestError
from pipelines.llm.prompt_style import PromptStyled, Template, template_field

_FOLDER = "candidates"
GENERATOR = "generate.candidates"
_STOP = ("\nUser:", "\n###", "\nAssistant:", "\n\n")


@cache
def styles() -> dict[str, str]:
    import yaml

    return yaml.safe_load((PROMPTS / _FOLDER / "styles.yaml").read_text(encoding="utf-8"))


class CandidatesParams(Params):
    n: int = Field(2, ge=1, le=16, description="new candidates per sample")
    temperatures: list[float] = Field(default_factory=lambda: [0.3, 1.0],
                                      description="candidate i is sampled at temperatures[i % len]")
    styles: list[str] = Field(default_factory=lambda: ["concise", "detailed"],
                              description="candidate i uses prompt style styles[i % len] (see candidates/styles.yaml)")
    include_original: bool = Field(True, description="keep the sample's own final answer as candidate 0")
    template: Template = template_field()
    n_examples: int = Field(2, ge=0, le=6)
    max_tokens: int = Field(160, ge=8, description="answer tokens per candidate")
    max_reasoning_tokens: int = Field(200, ge=8, description="reasoning samples: reasoning tokens per candidate")
    batch_size: int = Field(8, ge=1, description="samples whose requests go to the model together")

    @field_validator("temperatures")
    @classmethod
    def _temps(cls, temps: list[float]) -> list[float]:
        if not temps or any(not 0.0 <= t <= 5.0 for t in temps):
            raise ValueError("temperatures must be a non-empty list of values in [0, 5]")
        return temps

    @field_validator("styles")
    @classmethod
    def _styles(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in styles()]
        if not names or unknown:
            raise ValueError(f"styles must be a non-empty list of {sorted(styles())}; unknown: {unknown}")
        return names


def split_prompt(s: Sample) -> tuple[list[Message], Message | None]:
    """(prompt messages ending in a user/tool turn, the original final answer or None)."""
    messages = list(s.messages)
    if not messages and s.meta.get("task"):
        messages = [Message("user", str(s.meta["task"]))]
    original = messages.pop() if messages and messages[-1].role == "assistant" else None
    if not messages or messages[-1].role not in ("user", "tool"):
        raise ValueError(f"sample {s.id}: no user turn to answer (candidates need a prompt ending in a user turn)")
    return messages, original


@register(GENERATOR)
class Candidates(PromptStyled, BatchGenerator):
    Params = CandidatesParams
    prompt_folders = (_FOLDER, "multi_turn", "reasoning", "grounded")

    def _batch(self, batch: list[Sample]) -> list[Sample]:
        p = self.params
        usage = {s.id: Usage() for s in batch}
        done: dict[str, Sample] = {}
        prompts: dict[str, tuple[list[Message], Message | None]] = {}
        for s in batch:
            prompts[s.id] = split_prompt(s)
            original = prompts[s.id][1]
            if original is not None and original.tool_calls:
                done[s.id] = drop(s, self.ctx, "candidates_for_tool_call")
        live = [s for s in batch if s.id not in done]
        jobs = [(s, i) for s in live for i in range(p.n)]
        each = {(s.id, i): Usage() for s, i in jobs}  # per-candidate cost, for its provenance
        first = run_batch(self.ctx, [self._request(s, i, prompts[s.id][0]) for s, i in jobs])
        made: dict[tuple[str, int], Message] = {}
        think: list[tuple[Sample, int, str]] = []  # reasoning candidates still waiting for their answer
        for (s, i), result in zip(jobs, first):
            usage[s.id].add(result)
            each[(s.id, i)].add(result)
            if s.id in done:
                continue
            if isinstance(result, RequestError):
                done[s.id] = request_drop(s, self.ctx, result, f"candidate_{i}")
                continue
            c = result[0]
            if self._is_reasoning(s):
                text = tidy(c.text, c.finish_reason == "length")
                if not text:
                    done[s.id] = drop(s, self.ctx, "empty_candidate", candidate=i, raw=c.text)
                else:
                    think.append((s, i, text))
            elif c.parsed is not None:  # schema-constrained: store the validated JSON, canonically spaced
                made[(s.id, i)] = Message("assistant", json.dumps(c.parsed, ensure_ascii=False))
            else:
                text = tidy(c.text, c.finish_reason == "length")
                if not text:
                    done[s.id] = drop(s, self.ctx, "empty_candidate", candidate=i, raw=c.text)
                else:
                    made[(s.id, i)] = Message("assistant", text)
        think = [t for t in think if t[0].id not in done]
        answers = run_batch(self.ctx, [self._answer_request(s, i, prompts[s.id][0], r) for s, i, r in think])
        for (s, i, r), result in zip(think, answers):
            usage[s.id].add(result)
            each[(s.id, i)].add(result)
            if s.id in done:
                continue
            if isinstance(result, RequestError):
                done[s.id] = request_drop(s, self.ctx, result, f"candidate_{i}_answer")
            elif not result[0].text.strip():
                done[s.id] = drop(s, self.ctx, "empty_candidate", candidate=i, reasoning=r)
            else:
                made[(s.id, i)] = Message("assistant", result[0].text.strip(), reasoning=r)
        out = []
        for s in batch:
            if s.id in done:
                out.append(done[s.id])
                continue
            new = [Candidate(made[(s.id, i)], self._provenance(s, i, each[(s.id, i)])) for i in range(p.n)]
            original = prompts[s.id][1]
            if p.include_original and original is not None:
                new.insert(0, Candidate(original, self._original_provenance(s)))
            prov = {**s.provenance, "candidates_step": self.ctx.step_name, "candidates_generator": GENERATOR,
                    "candidates_usage": usage[s.id].as_dict()}
            out.append(replace(s, kind="preference", candidates=[*s.candidates, *new], provenance=prov))
        return out

    @staticmethod
    def _is_reasoning(s: Sample) -> bool:
        return s.kind == "reasoning" or any(m.reasoning for m in s.messages if m.role == "assistant")

    # ---- requests ---------------------------------------------------------------------------------

    def _setting(self, i: int) -> tuple[float, str]:
        p = self.params
        return p.temperatures[i % len(p.temperatures)], p.styles[i % len(p.styles)]

    def _request(self, s: Sample, i: int, prompt: list[Message]) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        temperature, style = self._setting(i)
        schema = s.meta.get("schema") if s.meta.get("task") == "extract" else None
        if self._is_reasoning(s):
            if self.style == "chat":
                system = {"role": "system", "content": render("reasoning/chat_system.jinja")}
                smp = sampling(cfg, p.max_reasoning_tokens + p.max_tokens, (), s.id, "candidate", i,
                               temperature=temperature)
                return Request(smp, messages=(system, *(m.to_dict() for m in prompt)))
            text = reasoning.solve_prompt(prompt[-1].content, reasoning.draw_shots(cfg["seed"], s.id, p.n_examples))
            smp = sampling(cfg, p.max_reasoning_tokens, ("\n### Answer", "\n###", "\n\n\n"), s.id, "candidate", i,
                           temperature=temperature)
            return Request(smp, prompt=text)
        max_tokens = p.max_tokens if schema is None else max(p.max_tokens, 256)
        if schema is not None and self.style == "fewshot" and s.meta.get("passage"):
            # A grounded extraction: the extraction prompt itself (with its worked examples when the schema
            # is the default one) gives a base model far better candidates than a conversation transcript.
            shots = [] if schema != grounded.DEFAULT_SCHEMA else [
                {**ex, "extraction_json": json.dumps(ex["extraction"], ensure_ascii=False)}
                for ex in self._shots(s, f"extract_{i}", examples("grounded/examples.yaml"))]
            text = render("grounded/fewshot_extract.jinja", examples=shots, passage=s.meta["passage"],
                          schema_json=json.dumps(schema, ensure_ascii=False))
            return Request(sampling(cfg, max_tokens, (), s.id, "candidate", i, temperature=temperature),
                           prompt=text, json_schema=schema)
        if self.style == "chat":
            system = {"role": "system", "content": render(f"{_FOLDER}/chat_system.jinja", preamble=styles()[style])}
            smp = sampling(cfg, max_tokens, (), s.id, "candidate", i, temperature=temperature)
            return Request(smp, messages=(system, *(m.to_dict() for m in prompt)), json_schema=schema)
        text = render(f"{_FOLDER}/fewshot.jinja", preamble=styles()[style], messages=prompt,
                      examples=self._shots(s, f"candidate_{i}", examples("multi_turn/examples.yaml")))
        if schema is not None:
            text += " "  # JSON follows "Assistant: "; the grammar then forces a schema-valid object
        smp = sampling(cfg, max_tokens, _STOP if schema is None else (), s.id, "candidate", i, temperature=temperature)
        return Request(smp, prompt=text, json_schema=schema)

    def _answer_request(self, s: Sample, i: int, prompt: list[Message], thought: str) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        text = reasoning.solve_prompt(prompt[-1].content, reasoning.draw_shots(cfg["seed"], s.id, p.n_examples),
                                      thought)
        smp = sampling(cfg, 32, ("\n", "###"), s.id, "candidate", i, "answer", temperature=min(cfg["temperature"], 0.2))
        return Request(smp, prompt=text)

    # ---- provenance -------------------------------------------------------------------------------

    def _provenance(self, s: Sample, i: int, usage: Usage) -> dict[str, Any]:
        p, cfg = self.params, self.ctx.llm_config
        temperature, style = self._setting(i)
        if self._is_reasoning(s):
            tname = "reasoning/chat_system.jinja" if self.style == "chat" else "reasoning/fewshot.jinja"
        elif s.meta.get("task") == "extract" and s.meta.get("passage") and self.style == "fewshot":
            tname = "grounded/fewshot_extract.jinja"
        else:
            tname = f"{_FOLDER}/{'chat_system.jinja' if self.style == 'chat' else 'fewshot.jinja'}"
        return {
            "origin": "generated",
            "step": self.ctx.step_name,
            "generator": GENERATOR,
            "template": tname,
            "template_hash": template_hash(tname),
            "style": None if self._is_reasoning(s) or tname.startswith("grounded/") else style,  # not applied there
            "persona_id": (s.persona or {}).get("id"),
            "model": self.ctx.llm.model_id,
            "backend": cfg.get("backend"),
            "sampling": {"temperature": temperature, "top_p": cfg["top_p"],
                         "seed": derive_seed(cfg["seed"], s.id, "candidate", i)},
            **usage.as_dict(),
        }

    @staticmethod
    def _original_provenance(s: Sample) -> dict[str, Any]:
        keep = ("step", "generator", "template", "template_hash", "persona_id", "model", "backend", "sampling")
        return {"origin": "original", **{k: s.provenance[k] for k in keep if k in s.provenance}}
