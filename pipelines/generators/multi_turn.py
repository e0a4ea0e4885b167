"""Persona-driven multi-turn conversations: a simulated user speaks as the persona, the assistant answers.

Two prompt styles, chosen by `template`:
- fewshot: one completion prompt per turn for base models (the embedded Gemma 3 270M): hand-written
  example conversations, then this persona's conversation so far, ending in "User:" or "Assistant:".
- chat: for instruct models. The simulated user's messages are asked for as test data under a JSON schema
  (`pipelines.generators.user_voice`: role-play prompts make a small instruct model answer as the
  assistant); the assistant answers through the chat API with the conversation so far.
Each turn's seed comes from the sample, the turn and the role, so a rerun asks exactly the same requests
(and hits the cache) whatever order shards run in. Conversations advance together, turn by turn, over a
batch of samples, so a server backend answers the batch's requests concurrently. In chat mode each
follow-up turn gets a move (follow up, ask for a clarification, shift topic, push back), seeded by the
sample; the few-shot examples demonstrate the same moves to base models.
A turn that is empty, repeats an earlier turn, echoes the other side or copies a few-shot example
(`pipelines.generators.turn_checks`) is asked again with a new seed (`retries`), then dropped with that reason.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import Field

from pipelines.core.registry import register
from pipelines.core.sample import Message, Sample, Verdict
from pipelines.core.step import Params, Step
from pipelines.generators import calls, turn_checks, user_voice
from pipelines.generators.calls import Usage, tidy
from pipelines.generators.templates import derive_seed, examples, files_in, render, template_hash
from pipelines.llm.client import Request
from pipelines.llm.errors import RequestError
from pipelines.llm.prompt_style import PromptStyled, Template, template_field

_FOLDER = "multi_turn"
# A base model keeps writing the transcript; these strings mark where its turn ends.
# The labelled form ("User (nurse, Amman):") is copied by the model for either side, so both forms stop.
_STOP = ("\nUser:", "\nUser (", "\nAssistant:", "\nAssistant (", "\nPerson:", "\n###", "\n\n")
# What the simulated user does after the opening turn: user_voice.MOVES (chat template; the few-shot
# examples show the same moves to base models by example).
# Chat user turns are JSON with a situation scratchpad before the message (pipelines.generators.user_voice).
_SCRATCHPAD_TOKENS = 192


class MultiTurnParams(Params):
    turns: int = Field(3, ge=1, le=10, description="user/assistant exchanges per conversation")
    template: Template = template_field()
    n_examples: int = Field(2, ge=0, le=6, description="few-shot example conversations per prompt")
    max_user_tokens: int = Field(64, ge=8)
    max_assistant_tokens: int = Field(256, ge=8)
    batch_size: int = Field(8, ge=1, description="conversations whose turns go to the model together")
    retries: int = Field(1, ge=0, le=4, description="new attempts (new seed) for a turn that is empty, repeats "
                                                    "an earlier turn, echoes the other side or copies an example")
    max_turn_overlap: float = Field(
        0.8, gt=0.0, le=1.0, description="a turn whose word trigrams are this much (share) contained in an "
                                         "earlier turn or a few-shot example counts as a copy")


@register("generate.multi_turn")
class MultiTurn(PromptStyled, Step):
    kind = "map"
    uses_llm = True
    Params = MultiTurnParams

    @classmethod
    def fingerprint_files(cls) -> list:
        return [*files_in(_FOLDER), calls.HERE, Path(turn_checks.__file__), *user_voice.fingerprint_files()]

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        for batch in calls.batches(samples, self.params.batch_size):
            yield from self._converse(batch)

    def _converse(self, batch: list[Sample]) -> list[Sample]:
        """Turn by turn over the whole batch: every live conversation's next turn goes to the model together."""
        p, cfg = self.params, self.ctx.llm_config
        pool = examples(f"{_FOLDER}/examples.yaml")
        shots = {s.id: random.Random(derive_seed(cfg["seed"], s.id, "examples")).sample(pool, min(p.n_examples, len(pool)))
                 for s in batch}
        turns: dict[str, list[dict[str, Any]]] = {s.id: [] for s in batch}
        usage = {s.id: Usage() for s in batch}
        done: dict[str, Sample] = {}
        for t in range(p.turns):
            for role in ("user", "assistant"):
                pending = [s for s in batch if s.id not in done]
                for attempt in range(p.retries + 1):
                    requests = [self._request(role, t, s, shots[s.id], turns[s.id], attempt) for s in pending]
                    retry = []
                    for s, result in zip(pending, calls.run_batch(self.ctx, requests)):
                        usage[s.id].add(result)
                        if isinstance(result, RequestError):
                            done[s.id] = calls.request_drop(s, self.ctx, result, f"{role}_{t}")
                            continue
                        text, problem = self._pick(role, result[0], turns[s.id], shots[s.id], s)
                        if problem is None:
                            if role == "user":
                                turns[s.id].append({"user": text, "assistant": None, "move": self._move(s, t)})
                            else:
                                turns[s.id][-1]["assistant"] = text
                        elif attempt < p.retries:
                            retry.append(s)
                        else:
                            done[s.id] = s.with_verdict(Verdict(self.ctx.step_name, False, problem, details={
                                "turn": t, "role": role, "text": text, "attempts": attempt + 1,
                                "partial": turns[s.id]}))
                    pending = retry
        return [done.get(s.id) or self._sample(s, turns[s.id], shots[s.id], usage[s.id]) for s in batch]

    def _pick(self, role: str, completion: Any, turns: list, shots: list, s: Sample) -> tuple[str, str | None]:
        """(text, problem or None): the first candidate turn that passes the turn checks (chat user turns
        come as several candidates), else the first candidate and its problem."""
        if role == "user" and self.style == "chat":
            texts = user_voice.messages(completion)
        else:
            texts = [tidy(completion.text, completion.finish_reason == "length")]
        found = []
        for text in texts or [""]:
            problem = turn_checks.turn_problem(
                role, text, turns, _example_texts(shots), self.params.max_turn_overlap,
                (s.persona or {}).get("occupation"), completion.finish_reason,
                calls.persona_traits(s) if self.style == "chat" else "") if text else f"empty_{role}_turn"
            if problem is None and role == "user" and not turns and self.style == "chat" \
                    and calls.off_goal(text, calls.persona_goal(s)):
                problem = "off_goal"  # the opening was asked to be about the persona's goal
            if problem is None:
                return text, None
            found.append((text, problem))
        return found[0]

    def _sample(self, seed: Sample, turns: list[dict[str, Any]], shots: list, usage: Usage) -> Sample:
        p = self.params
        messages = [m for t in turns for m in (Message("user", t["user"]), Message("assistant", t["assistant"]))]
        tname = f"{_FOLDER}/fewshot.jinja" if self.style == "fewshot" else f"{user_voice.FOLDER}/next.jinja"
        extra: dict[str, Any] = {"examples": [s["person"][:40] for s in shots] if self.style == "fewshot" else []}
        if self.style == "chat":
            extra["moves"] = [t["move"] for t in turns]
        prov = calls.provenance(seed, self.ctx, "generate.multi_turn", tname, template_hash(tname), usage, **extra)
        return replace(seed, kind="chat", messages=messages, provenance=prov)

    def _move(self, s: Sample, t: int) -> str:
        """What the simulated user does on turn t (chat template): open, then follow up, clarify, shift, push back."""
        if t == 0:
            return "open"
        return user_voice.MOVES[derive_seed(self.ctx.llm_config["seed"], s.id, t, "move") % len(user_voice.MOVES)]

    def _request(self, role: str, t: int, s: Sample, shots: list, turns: list, attempt: int = 0) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        description = calls.persona_text(s) or calls.DEFAULT_PERSONA
        # A retry differs only by its seed; the first attempt keeps the seed it always had (cache hits).
        seed_parts = (s.id, t, role) if attempt == 0 else (s.id, t, role, "retry", attempt)
        tokens = p.max_user_tokens if role == "user" else p.max_assistant_tokens
        if role == "user" and self.style == "chat":
            tokens += _SCRATCHPAD_TOKENS
        smp = calls.sampling(cfg, tokens, _STOP if self.style == "fewshot" else (), *seed_parts)
        if self.style == "fewshot":
            prompt = render(f"{_FOLDER}/fewshot.jinja", examples=shots, persona_description=description,
                            who=calls.persona_label(s), wants=calls.persona_goal(s),
                            turns=turns, speaker="User" if role == "user" else "Assistant")
            return Request(smp, prompt=prompt)
        history = []
        for turn in turns:
            history.append({"role": "user", "content": turn["user"]})
            if turn["assistant"] is not None:
                history.append({"role": "assistant", "content": turn["assistant"]})
        if role == "assistant":
            system = render(f"{_FOLDER}/chat_assistant.jinja")
            return Request(smp, messages=({"role": "system", "content": system}, *history))
        if t == 0:
            return user_voice.opening_for(s, smp)
        return user_voice.follow_up(description, history, self._move(s, t), smp)


def _example_texts(shots: list[dict[str, Any]]) -> list[str]:
    return [text for ex in shots for turn in ex["turns"] for text in (turn["user"], turn["assistant"])]
