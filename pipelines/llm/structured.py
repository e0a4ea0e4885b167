"""Structured output: a JSON schema in, a parsed and validated object out (`Completion.parsed`).

Every backend validates every structured answer with jsonschema, also where it constrained decoding
(llama.cpp grammars, vLLM structured outputs, a server's response_format): constraints can be cut short by
max_tokens, and some servers silently ignore a schema. An answer that fails is asked again with a new seed,
at most `structured_retries` times; after that the request's result is a StructuredOutputError carrying the
raw text and the reason, which the step records as a drop Verdict. Never a silent None.

Retry seeds are derived from the original seed, so a rerun asks exactly the same sequence of requests.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.llm.errors import StructuredOutputError

# Odd and large, so the retry seeds of completion i never collide with the first seeds of i+1, i+2, ...
_RETRY_STRIDE = 1_000_003
# llama.cpp reads 0xFFFFFFFF as "random"; keeping every seed below it suits every backend.
SEED_MODULUS = 0xFFFFFFFF


def request_seed(base: int, i: int) -> int:
    """Seed of the i-th of n completions: base + i, folded into [0, 2**32 - 1) (llama.cpp's sentinel excluded)."""
    return (base + i) % SEED_MODULUS


def retry_seed(seed: int, attempt: int) -> int:
    """Seed of structured-output retry `attempt` (1, 2, ...) of a completion first sampled at `seed`."""
    return (seed + attempt * _RETRY_STRIDE) % SEED_MODULUS


def parse_structured(text: str, schema: dict[str, Any], finish_reason: str = "stop") -> Any:
    """The JSON value in `text`, validated against `schema`; raises StructuredOutputError otherwise."""
    import jsonschema

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (output hit max_tokens; raise it)" if finish_reason == "length" else ""
        raise StructuredOutputError(text, f"not valid JSON: {exc}{hint}") from exc
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        raise StructuredOutputError(text, f"does not match schema: {exc.message}") from exc
    except jsonschema.SchemaError as exc:  # the step's schema itself is broken: not the model's fault
        raise ValueError(f"invalid JSON schema given to the model: {exc.message}") from exc
    return value


def gave_up(last: StructuredOutputError, attempts: int, tokens_in: int, tokens_out: int) -> StructuredOutputError:
    """The error a request ends with after `attempts` invalid answers (tokens: all attempts together)."""
    return StructuredOutputError(last.text, f"{last.reason} (after {attempts} attempt{'s' * (attempts > 1)})",
                                 tokens_in=tokens_in, tokens_out=tokens_out)
