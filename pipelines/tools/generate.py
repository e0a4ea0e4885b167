"""`tools.generate`: new tools invented per domain, attached to persona seeds for generate.function_calling.

    tools:  {use: tools.generate, after: [personas], n_tools: 3}
    calls:  {use: generate.function_calling, after: [tools]}

For each seed the model writes `n_tools` tools for the persona's domain (or one of `domains`), each as a
compact spec decoded under a JSON schema (`SPEC_SCHEMA`: a snake_case name, a description, 1-4 typed
parameters, 1-3 returned fields, short descriptions so that a small model finishes within
`max_tool_tokens`). Code, not the model, turns a spec into an OpenAI-style tool whose
`parameters` is JSON Schema and a result schema for the LLM-simulated tool; both must pass the JSON Schema
meta-schema (`pipelines.tools.schema.check_schema`) and the spec must make sense (distinct parameter
names, required ones that exist, enum values for strings only). The seed leaves with `meta.tools`,
`meta.result_schemas` and `meta.tool_domain`; a seed with fewer than `min_tools` valid tools is dropped
(reason too_few_valid_tools, with every invalid spec and why in the details).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from pipelines.core.registry import register
from pipelines.core.sample import Sample, Verdict, content_hash
from pipelines.core.step import Params, Step
from pipelines.generators import calls as plumbing
from pipelines.generators.templates import PROMPTS, derive_seed, examples, render, template_hash
from pipelines.llm.client import Request
from pipelines.llm.errors import RequestError
from pipelines.tools.decoding import free_string
from pipelines.tools.schema import ToolSchemaError, check_schema, normalise_tool
from pipelines.llm.prompt_style import PromptStyled, Template, template_field

_IDENT = "^[a-z][a-z0-9_]{1,39}$"
_FIELD = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": _IDENT},
        "type": {"enum": ["string", "integer", "number", "boolean"]},
        "description": free_string(60),
    },
    "required": ["name", "type", "description"],
    "additionalProperties": False,
}
_PARAM = {**_FIELD, "properties": {**_FIELD["properties"], "required": {"type": "boolean"},
                                   "values": {"type": "array", "items": free_string(24), "minItems": 2, "maxItems": 5}}}
SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": _IDENT},
        "description": free_string(100),
        "params": {"type": "array", "items": _PARAM, "minItems": 1, "maxItems": 4},
        "returns": {"type": "array", "items": _FIELD, "minItems": 1, "maxItems": 3},
    },
    "required": ["name", "description", "params", "returns"],
    "additionalProperties": False,
}
TEMPLATES = {"fewshot": "function_calling/fewshot_tool.jinja", "chat": "function_calling/chat_tool.jinja"}
EXAMPLES = "function_calling/tool_examples.yaml"


class GenerateToolsParams(Params):
    n_tools: int = Field(3, ge=1, le=8, description="tools the model writes per seed")
    min_tools: int = Field(2, ge=1, le=8, description="a seed with fewer valid tools is dropped")
    domains: list[str] | None = Field(None, description="draw the domain from this list instead of the persona's")
    template: Template = template_field()
    n_examples: int = Field(3, ge=1, le=6)
    max_tool_tokens: int = Field(320, ge=64)
    batch_size: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> GenerateToolsParams:
        if self.min_tools > self.n_tools:
            raise ValueError(f"min_tools ({self.min_tools}) cannot exceed n_tools ({self.n_tools})")
        return self


def spec_to_tool(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(OpenAI-style tool, result schema) from a compact spec; raises ToolSchemaError naming the problem."""
    name = spec.get("name", "?")
    props: dict[str, Any] = {}
    required = []
    for p in spec["params"]:
        if p["name"] in props:
            raise ToolSchemaError(f"{name}: parameter {p['name']!r} appears twice")
        prop = {"type": p["type"], "description": p["description"]}
        if "values" in p:
            if p["type"] != "string" or len(set(p["values"])) != len(p["values"]):
                raise ToolSchemaError(f"{name}.{p['name']}: values must be distinct strings on a string parameter")
            prop["enum"] = list(p["values"])
        props[p["name"]] = prop
        if p.get("required", True):
            required.append(p["name"])
    if not required:
        raise ToolSchemaError(f"{name}: at least one parameter must be required")
    returns = {r["name"]: {"type": r["type"], "description": r["description"]} for r in spec["returns"]}
    if len(returns) != len(spec["returns"]):
        raise ToolSchemaError(f"{name}: a returned field appears twice")
    tool = normalise_tool({"name": name, "description": spec["description"],
                           "parameters": {"type": "object", "properties": props, "required": required}})
    result_schema = {"type": "object", "properties": returns, "required": list(returns), "additionalProperties": False}
    check_schema(result_schema, f"{name}.result_schema")
    return tool, result_schema


@register("tools.generate")
class GenerateTools(PromptStyled, Step):
    kind = "map"
    uses_llm = True
    Params = GenerateToolsParams

    @classmethod
    def fingerprint_files(cls) -> list[Path]:
        return [PROMPTS / t for t in TEMPLATES.values()] + [PROMPTS / EXAMPLES, Path(__file__).parent / "schema.py",
                                                            Path(__file__).parent / "decoding.py", plumbing.HERE]

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        for batch in plumbing.batches(samples, self.params.batch_size):
            items, meta = [], []
            for seed in batch:
                domain, user = self._domain(seed)
                for j in range(self.params.n_tools):
                    items.append(self._request(seed, domain, user, j))
                meta.append((seed, domain))
            results = plumbing.run_batch(self.ctx, items)
            for b, (seed, domain) in enumerate(meta):
                yield self._attach(seed, domain, results[b * self.params.n_tools:(b + 1) * self.params.n_tools])

    def _domain(self, seed: Sample) -> tuple[str, str]:
        persona = seed.persona or {}
        if self.params.domains:
            rng = random.Random(derive_seed(self.ctx.llm_config["seed"], seed.id, "domain"))
            domain = rng.choice(self.params.domains)
        else:
            domain = persona.get("domain") or "everyday life"
        user = persona.get("occupation") if persona.get("occupation") not in (None, "unknown") else "people"
        goals = persona.get("goals")
        return domain, f"{_a(user)} {user}" + (f" who wants to {goals}" if goals and goals != "unknown" else "")

    def _request(self, seed: Sample, domain: str, user: str, j: int) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        sampling = plumbing.sampling(cfg, p.max_tool_tokens, (), seed.id, "tool", domain, j)
        rng = random.Random(derive_seed(cfg["seed"], seed.id, "tool_examples", j))
        pool = [e for e in examples(EXAMPLES) if e["domain"] != domain] or examples(EXAMPLES)
        shots = [{**e, "tool": json.dumps(e["tool"], ensure_ascii=False)} for e in rng.sample(pool, min(p.n_examples, len(pool)))]
        if self.style == "fewshot":
            prompt = render(TEMPLATES["fewshot"], examples=shots, domain=domain, used_by=user)
            return Request(sampling=sampling, prompt=prompt + " ", json_schema=SPEC_SCHEMA)
        system = render(TEMPLATES["chat"], domain=domain, example=shots[0]["tool"], used_by=user)
        return Request(sampling=sampling, json_schema=SPEC_SCHEMA, messages=(
            {"role": "system", "content": system}, {"role": "user", "content": "(the tool)"}))

    def _attach(self, seed: Sample, domain: str, results: list[Any]) -> Sample:
        tools: list[dict[str, Any]] = []
        result_schemas: dict[str, Any] = {}
        rejected: list[str] = []
        usage = plumbing.Usage()
        for res in results:
            usage.add(res)
            if isinstance(res, RequestError):
                rejected.append(f"unparseable: {res.reason}")
                continue
            try:
                tool, result_schema = spec_to_tool(res[0].parsed)
            except ToolSchemaError as exc:
                rejected.append(f"invalid: {exc}")
                continue
            name = tool["function"]["name"]
            if name in result_schemas:
                rejected.append(f"duplicate name {name!r}")
                continue
            tools.append(tool)
            result_schemas[name] = result_schema
        self.ctx.counters["tools_valid"] += len(tools)
        self.ctx.counters["tools_rejected"] += len(rejected)
        if len(tools) < self.params.min_tools:
            return seed.with_verdict(Verdict(self.ctx.step_name, False, "too_few_valid_tools", details={
                "domain": domain, "valid": [t["function"]["name"] for t in tools], "rejected": rejected}))
        template = TEMPLATES[self.style]
        provenance = {**seed.provenance, "tools": {
            "generator": "tools.generate", "step": self.ctx.step_name, "template": template,
            "template_hash": content_hash({template: template_hash(template), EXAMPLES: template_hash(EXAMPLES)}, 12),
            "model": self.ctx.llm.model_id, "domain": domain, "rejected": rejected, **usage.as_dict()}}
        meta = {**seed.meta, "tools": tools, "result_schemas": result_schemas, "tool_domain": domain}
        return replace(seed, meta=meta, provenance=provenance)


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
