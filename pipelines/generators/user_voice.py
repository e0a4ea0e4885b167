"""The simulated user's messages on instruct models, asked for as test data under a JSON schema.

Measured on the embedded Qwen2.5-Coder-0.5B-Instruct: asked to role-play the user ("You are this person;
write your message"), it answers as the assistant ("Sure, I'd be happy to help", "Hello! How can I assist
you today?") or writes letters ("Dear [Name], I hope this message finds you well"); asked to describe the
person's situation and then the message they type, as JSON, it writes a user's question (6 of 6 probe
personas, against 1 of 6). The `situation` field is a scratchpad the model fills first; only the message
is kept. Prompts: prompts/user_voice/*.jinja. The few-shot path for base models does not come here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.core.sample import Sample
from pipelines.generators.calls import DEFAULT_PERSONA, persona_goal, persona_text
from pipelines.generators.templates import files_in, render
from pipelines.llm.client import Completion, Request, Sampling

FOLDER = "user_voice"
HERE = Path(__file__)
# What the simulated user does after an answer (prompts/user_voice/next.jinja words each one).
MOVES = ("follow_up", "clarify", "topic_shift", "push_back")
_ASK = {"help": ("for help to {goal}", "for help with something in their work or life"),
        "advice": ("for advice on how to {goal}", "for advice about their work or life")}


def _text(lo: int) -> dict[str, Any]:
    # No maxLength: llama.cpp writes it out as one nested grammar rule per character (thousands of rules);
    # max_tokens bounds the length instead.
    return {"type": "string", "minLength": lo}


OPEN_SCHEMA = {"type": "object", "properties": {"situation": _text(10), "question": _text(8)},
               "required": ["situation", "question"], "additionalProperties": False}
NEXT_SCHEMA = {"type": "object", "properties": {"messages": {"type": "array", "items": _text(4),
                                                             "minItems": 3, "maxItems": 3}},
               "required": ["messages"], "additionalProperties": False}


def fingerprint_files() -> list[Path]:
    return [HERE, *files_in(FOLDER)]


def opening(persona: str, purpose: str, smp: Sampling, n: int = 1) -> Request:
    """The persona's first message; `purpose` completes "This person is about to ask an AI assistant ..."."""
    text = render(f"{FOLDER}/open.jinja", persona_description=persona, purpose=purpose)
    return Request(smp, messages=({"role": "user", "content": text},), json_schema=OPEN_SCHEMA, n=n)


def opening_for(seed: Sample, smp: Sampling, n: int = 1, ask: str = "help") -> Request:
    """The seed persona's first message, about its own goal when it has one: `ask` "help" (something to
    get done) or "advice" (something to decide, which no tool answers)."""
    with_goal, without = _ASK[ask]
    goal = persona_goal(seed)
    return opening(persona_text(seed) or DEFAULT_PERSONA, with_goal.format(goal=goal) if goal else without, smp, n)


def follow_up(persona: str, transcript: list[dict[str, str]], move: str, smp: Sampling) -> Request:
    """Three candidates for the persona's next message after `transcript` (roles user/assistant), doing `move`."""
    text = render(f"{FOLDER}/next.jinja", persona_description=persona, transcript=transcript, move=move)
    return Request(smp, messages=({"role": "user", "content": text},), json_schema=NEXT_SCHEMA)


def messages(completion: Completion) -> list[str]:
    """The candidate messages of a schema-checked completion (the backend validated it against the schema)."""
    parsed = completion.parsed or {}
    found = parsed["messages"] if "messages" in parsed else [parsed.get("question") or parsed.get("user_message", "")]
    return [str(m).strip() for m in found if str(m).strip()]
