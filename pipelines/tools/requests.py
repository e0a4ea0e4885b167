"""The model requests of generate.function_calling, in both prompt styles.

- fewshot (base models, e.g. the embedded Gemma 3 270M): completion prompts made of hand-written examples
  (prompts/function_calling/*.jinja, examples.yaml) followed by this sample, ending where the model writes;
- chat (instruct models): a system prompt and the conversation so far, through the chat API. Earlier calls
  are the assistant's JSON and results a user turn ("Tool results: ..."), which every server accepts.

Every call request carries the decoding schema of the tools it may call (`calls_schema`), so both styles
get constrained decoding wherever the backend supports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.core.sample import canonical_json
from pipelines.generators.templates import render
from pipelines.llm.client import Request, Sampling
from pipelines.tools.decoding import calls_schema
from pipelines.tools.fewshot import Example
from pipelines.tools.prompting import calls_json, result_json, signature

FOLDER = "function_calling"
TEMPLATES = {
    "fewshot": {"plan": "fewshot_plan.jinja", "request": "fewshot_request.jinja", "calls": "fewshot_transcript.jinja",
                "answer": "fewshot_transcript.jinja", "result": "fewshot_result.jinja"},
    "chat": {"plan": "chat_plan.jinja", "request": "chat_request.jinja", "calls": "chat_calls.jinja",
             "answer": "chat_answer.jinja", "result": "chat_result.jinja"},
}
Tools = list[dict[str, Any]]
# Chat requests are asked for as test data in JSON (prompts/function_calling/chat_request.jinja says why).
REQUEST_SCHEMA = {"type": "object", "properties": {"user_message": {"type": "string", "minLength": 8}},
                  "required": ["user_message"], "additionalProperties": False}
Steps = list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]


@dataclass(frozen=True)
class Conversation:
    """What a prompt may show of one sample in progress."""

    persona: str
    shots: list[Example]
    offered: Tools
    request: str = ""
    steps: Steps | tuple = ()


def _lookups(c: Conversation) -> list[dict[str, str]]:
    """Every call and what it returned, for the chat prompts that want words. Shown its calls as JSON
    assistant turns, the 0.5B teacher wrote more calls as its "answer" (9 of 10 multi-step probes, even
    told "answer in words now"; 2 of 9 parallel seeds with one round of two calls), and given them as a
    digest user message, it pasted the digest back. In the system prompt, as what was looked up, with the
    request as the only user turn, it answers in words."""
    return [{"call": f"{k['name']}({canonical_json(k['arguments'])})", "result": result_json(r)}
            for ks, rs in c.steps for k, r in zip(ks, rs)]


@dataclass(frozen=True)
class Prompts:
    style: str  # "fewshot" | "chat"

    def template(self, role: str) -> str:
        return f"{FOLDER}/{TEMPLATES[self.style][role]}"

    def templates(self) -> dict[str, str]:
        return {role: self.template(role) for role in TEMPLATES[self.style]}

    def _history(self, c: Conversation) -> list[dict[str, str]]:
        history = [{"role": "user", "content": c.request}]
        for calls, results in c.steps:
            history += [{"role": "assistant", "content": calls_json(calls)},
                        {"role": "user", "content": f"Tool results: {result_json(results)}"}]
        return history

    def _transcript(self, c: Conversation, speaker: str) -> str:
        return render(self.template("calls"), examples=[s.transcript() for s in c.shots],
                      tools=[signature(t) for t in c.offered], request=c.request, speaker=speaker,
                      steps=[{"calls": calls_json(k), "results": result_json(r)} for k, r in c.steps])

    def plan(self, c: Conversation, tools: Tools, count: tuple[int, int], sampling: Sampling, n: int = 1,
             in_order: bool = False, decode: Tools | None = None) -> Request:
        """The first calls, before any request exists: values that fit the persona. in_order: exactly one
        call to each of `tools`, in that order. decode: the same tools as decoded (narrower), when the
        prompt should not show what only the grammar needs."""
        schema = calls_schema(decode or tools, *count, in_order=in_order)
        if self.style == "fewshot":
            prompt = render(self.template("plan"), examples=[s.plan_shot() for s in c.shots if s.steps],
                            persona_description=c.persona, tools=[signature(t) for t in tools])
            return Request(sampling=sampling, prompt=prompt + " ", json_schema=schema, n=n)
        system = render(self.template("plan"), persona_description=c.persona, tools=[canonical_json(t) for t in tools])
        return Request(sampling=sampling, json_schema=schema, n=n, messages=(
            {"role": "system", "content": system}, {"role": "user", "content": "(the calls)"}))

    def request(self, c: Conversation, calls: str, needs: str, mentions: str, sampling: Sampling, n: int) -> Request:
        """The persona's message asking for `calls` (or, for no_tool, for something no tool does)."""
        if self.style == "fewshot":
            prompt = render(self.template("request"), examples=[s.request_shot() for s in c.shots],
                            persona_description=c.persona, calls=calls, needs=needs, mentions=mentions)
            return Request(sampling=sampling, prompt=prompt, n=n)
        text = render(self.template("request"), persona_description=c.persona, needs=needs, mentions=mentions)
        return Request(sampling=sampling, n=n, json_schema=REQUEST_SCHEMA, messages=({"role": "user", "content": text},))

    def calls(self, c: Conversation, tools: Tools, count: tuple[int, int], sampling: Sampling) -> Request:
        """The next calls, decoded from the conversation so far, restricted to `tools`."""
        schema = calls_schema(tools, *count)
        if self.style == "fewshot":
            return Request(sampling=sampling, prompt=self._transcript(c, "Calls") + " ", json_schema=schema)
        system = render(self.template("calls"), tools=[canonical_json(t) for t in c.offered])
        return Request(sampling=sampling, json_schema=schema,
                      messages=({"role": "system", "content": system}, *self._history(c)))

    def answer(self, c: Conversation, sampling: Sampling, n: int = 1) -> Request:
        if self.style == "fewshot":
            return Request(sampling=sampling, prompt=self._transcript(c, "Answer"), n=n)
        system = render(self.template("answer"), tools=[signature(t) for t in c.offered], results=_lookups(c))
        return Request(sampling=sampling, n=n, messages=({"role": "system", "content": system},
                                                         {"role": "user", "content": c.request}))

    def follow_up(self, c: Conversation, answer: str, message: str, sampling: Sampling, n: int = 1) -> Request:
        """The assistant's reply to the user's `message` after its `answer` (chat only)."""
        system = render(self.template("answer"), tools=[signature(t) for t in c.offered], results=_lookups(c),
                        follow_up=True)
        history = [{"role": "user", "content": c.request}, {"role": "assistant", "content": answer},
                   {"role": "user", "content": message}]
        return Request(sampling=sampling, messages=({"role": "system", "content": system}, *history), n=n)
