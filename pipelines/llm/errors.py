"""Errors shared by all model backends.

Two families, and the difference matters to every step that calls a model:

- `RequestError` (StructuredOutputError, RequestRejected, ToolCallError): *this request* cannot be answered usefully.
  The batch API returns it in place of that request's completions; a step turns it into a drop Verdict
  that keeps the raw text (`drop_reason(exc)` gives the reason string). The run goes on.
- `LLMUnavailable` (ServerUnreachable, RetriesExhausted, BudgetExceeded, AuthError): *the model* cannot
  be used right now. It is always raised, never returned, so no step can mistake it for a bad sample;
  the executor stops the run, finished shards are kept, and rerunning the same command resumes.

Messages never contain API keys: the OpenAI backend builds them from the URL, status and server text only.
"""

from __future__ import annotations


class RequestError(ValueError):
    """Base of per-request failures; `text` is the raw model output (may be ''), `reason` what was wrong."""

    kind = "request_error"

    def __init__(self, text: str, reason: str, *, tokens_in: int = 0, tokens_out: int = 0) -> None:
        super().__init__(f"{self.kind.replace('_', ' ')}: {reason}; text={text[:200]!r}")
        self.text = text
        self.reason = reason
        # Tokens the model spent on the failed attempts: they cost money, so accounting counts them.
        self.tokens_in = tokens_in
        self.tokens_out = tokens_out


class StructuredOutputError(RequestError):
    """The model was asked for JSON matching a schema and its output did not parse or validate.

    Raised (or returned by the batch API) instead of `parsed=None`, so a step can never mistake a failed
    extraction for an empty one. Raised only after the backend's bounded retries (`structured_retries`).
    """

    kind = "structured_output_invalid"


class RequestRejected(RequestError):
    """The server refused this one request (HTTP 400/413/422: e.g. the prompt is longer than the context)."""

    kind = "request_rejected"


def drop_reason(exc: RequestError) -> str:
    """The Verdict reason a step records for a per-request failure, e.g. 'structured_output_invalid'."""
    return exc.kind


class LLMUnavailable(RuntimeError):
    """The model cannot serve requests now; stops the run (finished work is kept, a rerun resumes)."""


class ServerUnreachable(LLMUnavailable):
    """Connection refused / DNS failure / no route, after the bounded retries."""


class RetriesExhausted(LLMUnavailable):
    """A request kept failing with retryable errors (429, 5xx, timeouts, resets) past max_retries."""


class AuthError(LLMUnavailable):
    """401/403/404 from the server: a wrong key, a missing permission or an unknown model. Never retried."""


class BudgetExceeded(LLMUnavailable):
    """The run directory spent its token or cost budget (`max_total_tokens`, `max_cost`)."""


class ToolCallError(RequestError):
    """The model wrote a tool call that does not parse (e.g. an unclosed LFM2 `[name(arg=...)]` list)."""

    kind = "tool_call_invalid"


def as_verdict(step_name: str, exc: RequestError):
    """The drop Verdict for a per-request failure: reason = exc.kind, details keep the raw text and why.

    The contract for steps: `result = client.generate(reqs)[i]`; if `isinstance(result, RequestError)`,
    yield `sample.with_verdict(as_verdict(self.ctx.step_name, result))` instead of the generated sample.
    """
    from pipelines.core.sample import Verdict

    return Verdict(step_name, False, drop_reason(exc), details={"raw_text": exc.text, "why": exc.reason})
