"""An LLM-simulated tool: for a tool we cannot run, the model writes its JSON result.

The result is decoded under a result schema (the catalog's `result_schema` for that tool, or a flat object
of plain values, `DEFAULT_RESULT_SCHEMA`), then validated against it again, so a simulated result is always
well-formed JSON of the promised shape. Whether it is *plausible* is up to the model; samples record which
results were simulated (provenance `executors`), so a later filter or a reviewer can weigh them.

Split into building the request and reading its answer, so a generator can send many simulations to the
model as one batch.
"""

from __future__ import annotations

from typing import Any

from pipelines.core.sample import canonical_json
from pipelines.generators.templates import render
from pipelines.llm.client import Completion, Request, Sampling
from pipelines.llm.errors import StructuredOutputError
from pipelines.tools.decoding import DEFAULT_RESULT_SCHEMA, decoding_schema
from pipelines.tools.prompting import result_json, signature
from pipelines.tools.schema import schema_errors

FEWSHOT = "function_calling/fewshot_result.jinja"
CHAT = "function_calling/chat_result.jinja"


def result_decoding_schema(result_schema: dict[str, Any] | None) -> dict[str, Any]:
    return DEFAULT_RESULT_SCHEMA if result_schema is None else decoding_schema(result_schema)


def simulation_request(tool: dict[str, Any], call: dict[str, Any], result_schema: dict[str, Any] | None, *,
                       sampling: Sampling, template: str = "fewshot",
                       shots: list[dict[str, Any]] | None = None) -> Request:
    """The model request that simulates `tool` answering `call` ({"name", "arguments"})."""
    schema = result_decoding_schema(result_schema)
    if template == "fewshot":
        prompt = render(FEWSHOT, examples=shots or [], tool=signature(tool), call=result_json(call))
        return Request(sampling=sampling, prompt=prompt + " ", json_schema=schema)
    system = render(CHAT, tool=canonical_json(tool), result_schema=canonical_json(result_schema or schema))
    return Request(sampling=sampling, json_schema=schema, messages=(
        {"role": "system", "content": system}, {"role": "user", "content": result_json(call)}))


def read_result(completion: Completion, result_schema: dict[str, Any] | None) -> dict[str, Any]:
    """The simulated result; raises StructuredOutputError unless it is an object that fits the schema."""
    result = completion.parsed
    errors = schema_errors(result_schema or DEFAULT_RESULT_SCHEMA, result)
    if not isinstance(result, dict) or errors:
        raise StructuredOutputError(completion.text, f"simulated result does not fit its schema: {errors[:3]}")
    return result
