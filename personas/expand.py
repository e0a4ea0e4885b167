"""`personas.expand`: text-to-persona. The model turns a persona's attribute set into a richer description
(a concrete situation, why they would ask an assistant, how they write), which generators then quote.

    expand: {use: personas.expand, after: [personas]}

Templates: `fewshot` (base models; hand-written examples in personas/prompts/expand_examples.yaml) or
`chat` (instruct models). The expanded persona is a new, valid Persona (same attributes, new description,
so a new id); the description it came from is kept in `meta.persona_seed` and provenance records the
expansion (template, hash, model). An expansion that is too short, repeats a few-shot example (whole, or any run of six words), or does
not mention the persona's occupation is dropped with a verdict (expansion_too_short, copied_example,
expansion_off_persona): downstream prompts would otherwise speak for someone else.
"""

from __future__ import annotations

import difflib
import hashlib
import random
import re
from collections.abc import Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml
from pydantic import Field

from personas.schema import Persona
from pipelines.core.registry import register
from pipelines.core.sample import Sample, Verdict
from pipelines.core.step import Params, Step
from pipelines.llm.client import Request, Sampling
from pipelines.llm.errors import RequestError, drop_reason
from pipelines.llm.prompt_style import PromptStyled, Template, template_field

PROMPTS = Path(__file__).resolve().parent / "prompts"
SHOWN = ("occupation", "region", "age_band", "expertise", "goals", "communication_style")
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(PROMPTS)), undefined=jinja2.StrictUndefined,
                          autoescape=False)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_WORD = re.compile(r"\w+")


def derive_seed(base: int, *parts: Any) -> int:
    """Same rule as the generators' seeds: from the recipe seed and the content, never from position."""
    h = hashlib.sha256(repr((base, *parts)).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


@cache
def _examples() -> list[dict[str, Any]]:
    return yaml.safe_load((PROMPTS / "expand_examples.yaml").read_text(encoding="utf-8"))


@cache
def _hash(name: str) -> str:
    return hashlib.sha256((PROMPTS / name).read_bytes()).hexdigest()[:12]


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


class ExpandParams(Params):
    template: Template = template_field()
    n_examples: int = Field(2, ge=1, le=4)
    max_tokens: int = Field(120, ge=16)
    min_chars: int = Field(60, ge=1, description="shorter expansions are dropped")
    batch_size: int = Field(8, ge=1, description="personas whose requests go to the model together")


@register("personas.expand")
class ExpandPersonas(PromptStyled, Step):
    kind = "map"
    uses_llm = True
    Params = ExpandParams

    @classmethod
    def fingerprint_files(cls) -> list:
        return sorted(PROMPTS.iterdir())

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        batch: list[Sample] = []
        for s in samples:
            if not s.persona:
                raise ValueError(f"sample {s.id} has no persona: put personas.sample before personas.expand")
            batch.append(s)
            if len(batch) == self.params.batch_size:
                yield from self._batch(batch)
                batch = []
        if batch:
            yield from self._batch(batch)

    def _batch(self, batch: list[Sample]) -> list[Sample]:
        requests = [self._request(s) for s in batch]
        generate = getattr(self.ctx.llm, "generate", None)
        if generate is not None:
            results = list(generate(requests))
        else:
            results = []
            for r in requests:
                try:
                    results.append(self.ctx.llm.complete(r.prompt, sampling=r.sampling) if r.prompt is not None
                                   else self.ctx.llm.chat(list(r.messages or ()), sampling=r.sampling))
                except RequestError as exc:
                    results.append(exc)
        return [self._result(s, r) for s, r in zip(batch, results)]

    def _request(self, s: Sample) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        attrs = {k: s.persona.get(k, "unknown") for k in SHOWN}
        seed = derive_seed(cfg["seed"], s.persona.get("id"), "expand")
        if self.style == "chat":
            text = _ENV.get_template("expand_chat.jinja").render(attributes=attrs)
            smp = Sampling(cfg["temperature"], cfg["top_p"], p.max_tokens, (), seed)
            return Request(smp, messages=({"role": "user", "content": text},))
        rng = random.Random(derive_seed(cfg["seed"], s.persona.get("id"), "examples"))
        shots = rng.sample(_examples(), min(p.n_examples, len(_examples())))
        text = _ENV.get_template("expand_fewshot.jinja").render(examples=shots, attributes=attrs)
        return Request(Sampling(cfg["temperature"], cfg["top_p"], p.max_tokens, ("\n###", "\n\n"), seed), prompt=text)

    def _result(self, s: Sample, result: Any) -> Sample:
        name = self.ctx.step_name
        if isinstance(result, RequestError):
            return s.with_verdict(Verdict(name, False, drop_reason(result), details={"raw": result.text[:4000]}))
        c = result[0]
        text = " ".join(c.text.split())
        if c.finish_reason == "length":  # keep whole sentences only
            ends = [m.end() for m in _SENTENCE_END.finditer(text)]
            text = text[: ends[-1]] if ends else text
        reason = self._problem(s, text)
        if reason:
            return s.with_verdict(Verdict(name, False, reason, details={"expansion": text}))
        attrs = {k: v for k, v in s.persona.items() if k not in ("id", "description")}
        expanded = Persona(**attrs, description=text).model_dump()
        tname = "expand_fewshot.jinja" if self.style == "fewshot" else "expand_chat.jinja"
        prov = {**s.provenance, "persona_expansion": {
            "step": name, "generator": "personas.expand", "template": f"personas/{tname}",
            "template_hash": _hash(tname), "model": self.ctx.llm.model_id, "from_persona_id": s.persona.get("id"),
            "tokens_in": c.tokens_in, "tokens_out": c.tokens_out, "cached": c.cached}}
        meta = {**s.meta, "persona_seed": {"id": s.persona.get("id"), "description": s.persona.get("description")}}
        return replace(s, persona=expanded, provenance=prov, meta=meta)

    def _problem(self, s: Sample, text: str) -> str | None:
        if len(text) < self.params.min_chars:
            return "expansion_too_short"
        words = _words(text)
        norm = " ".join(words)
        grams = {tuple(words[i:i + 6]) for i in range(len(words) - 5)}
        for ex in _examples():
            shown = _words(ex["description"])
            # Whole or in part: a base model sometimes pastes an example's sentence into a new persona.
            if difflib.SequenceMatcher(None, norm, " ".join(shown)).ratio() >= 0.8 or \
                    grams & {tuple(shown[i:i + 6]) for i in range(len(shown) - 5)}:
                return "copied_example"
        occupation = [w for w in _words(str(s.persona.get("occupation", ""))) if len(w) > 3]
        if occupation and not any(w in norm for w in occupation):
            return "expansion_off_persona"
        return None
