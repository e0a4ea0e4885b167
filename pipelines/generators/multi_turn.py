"""Persona-driven multi-turn conversations: a simulated user speaks as the persona, the assistant answers.

Two prompt styles, chosen by `template`:
- fewshot: one completion prompt per turn for base models (the embedded Gemma 3 270M): hand-written
  example conversations, then this persona's conversation so far, ending in "User:" or "Assistant:".
- chat: for instruct models, the chat API with a system prompt that puts the model in the user's shoes.
Each turn's seed comes from the persona, the turn and the role, so a rerun asks exactly the same requests
(and hits the cache) whatever order shards run in.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Literal

from pydantic import Field

from pipelines.core.registry import register
from pipelines.core.sample import Message, Sample, Verdict
from pipelines.core.step import Params, Step
from pipelines.generators.templates import derive_seed, examples, files_in, render, template_hash
from pipelines.llm.client import Sampling

_FOLDER = "multi_turn"
# A base model keeps writing the transcript; these strings mark where its turn ends.
_STOP = {"user": ("\nAssistant:", "\n###", "\nPerson:", "\nUser:", "\n\n"),
         "assistant": ("\nUser:", "\n###", "\nPerson:", "\nAssistant:", "\n\n")}
_SENTENCE_END = re.compile(r"[.!?)\"'](?=\s|$)")


class MultiTurnParams(Params):
    turns: int = Field(3, ge=1, le=10, description="user/assistant exchanges per conversation")
    template: Literal["fewshot", "chat"] = Field(
        "fewshot", description="fewshot: completion prompts for base models; chat: chat API for instruct models")
    n_examples: int = Field(2, ge=0, le=6, description="few-shot example conversations per prompt")
    max_user_tokens: int = Field(64, ge=8)
    max_assistant_tokens: int = Field(160, ge=8)


def _tidy(text: str, truncated: bool) -> str:
    text = text.strip()
    if truncated:  # the model ran out of tokens mid-sentence: keep whole sentences only
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        if ends:
            text = text[: ends[-1]]
    return text.strip()


@register("generate.multi_turn")
class MultiTurn(Step):
    kind = "map"
    uses_llm = True
    Params = MultiTurnParams

    @classmethod
    def fingerprint_files(cls) -> list:
        return files_in(_FOLDER)

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        for seed_sample in samples:
            yield self._converse(seed_sample)

    def _converse(self, seed: Sample) -> Sample:
        p, cfg = self.params, self.ctx.llm_config
        persona = seed.persona or {}
        description = persona.get("description") or "A curious person with everyday questions."
        rng = random.Random(derive_seed(cfg["seed"], seed.id, "examples"))
        pool = examples(f"{_FOLDER}/examples.yaml")
        shots = rng.sample(pool, min(p.n_examples, len(pool)))
        turns: list[dict[str, Any]] = []
        usage = {"requests": 0, "tokens_in": 0, "tokens_out": 0, "latency_s": 0.0, "cached": 0}
        for t in range(p.turns):
            for role in ("user", "assistant"):
                text = self._turn(role, t, seed.id, description, shots, turns, usage)
                if not text:
                    return seed.with_verdict(Verdict(self.ctx.step_name, False, f"empty_{role}_turn",
                                                     details={"turn": t, "partial": turns}))
                if role == "user":
                    turns.append({"user": text, "assistant": None})
                else:
                    turns[-1]["assistant"] = text
        messages = [m for t in turns for m in (Message("user", t["user"]), Message("assistant", t["assistant"]))]
        tname = f"{_FOLDER}/{'fewshot.jinja' if p.template == 'fewshot' else 'chat_user.jinja'}"
        provenance = {
            **seed.provenance,
            "step": self.ctx.step_name,
            "generator": "generate.multi_turn",
            "template": tname,
            "template_hash": template_hash(tname),
            "examples": [s["person"][:40] for s in shots] if p.template == "fewshot" else [],
            "persona_id": persona.get("id"),
            "model": self.ctx.llm.model_id,
            "backend": cfg["backend"],
            "sampling": {"temperature": cfg["temperature"], "top_p": cfg["top_p"], "seed": cfg["seed"]},
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in usage.items()},
        }
        return replace(seed, kind="chat", messages=messages, provenance=provenance)

    def _turn(self, role: str, t: int, sid: str, description: str, shots: list, turns: list, usage: dict) -> str:
        p, cfg = self.params, self.ctx.llm_config
        sampling = Sampling(
            temperature=cfg["temperature"], top_p=cfg["top_p"],
            max_tokens=p.max_user_tokens if role == "user" else p.max_assistant_tokens,
            stop=_STOP[role] if p.template == "fewshot" else (),
            seed=derive_seed(cfg["seed"], sid, t, role),
        )
        if p.template == "fewshot":
            prompt = render(f"{_FOLDER}/fewshot.jinja", examples=shots, persona_description=description,
                            turns=turns, speaker="User" if role == "user" else "Assistant")
            out = self.ctx.llm.complete(prompt, sampling=sampling)[0]
        else:
            out = self.ctx.llm.chat(self._chat_messages(role, t, description, turns), sampling=sampling)[0]
        usage["requests"] += 1
        usage["tokens_in"] += out.tokens_in
        usage["tokens_out"] += out.tokens_out
        usage["latency_s"] += out.latency_s
        usage["cached"] += int(out.cached)
        return _tidy(out.text, out.finish_reason == "length")

    def _chat_messages(self, role: str, t: int, description: str, turns: list) -> list[dict[str, str]]:
        # The simulated user sees the conversation with roles swapped: its own lines are "assistant".
        history = []
        for turn in turns:
            history.append({"role": "user", "content": turn["user"]})
            if turn["assistant"] is not None:
                history.append({"role": "assistant", "content": turn["assistant"]})
        if role == "assistant":
            system = render(f"{_FOLDER}/chat_assistant.jinja")
            return [{"role": "system", "content": system}, *history]
        system = render(f"{_FOLDER}/chat_user.jinja", persona_description=description, turn_index=t)
        swapped = [{"role": "assistant" if m["role"] == "user" else "user", "content": m["content"]} for m in history]
        return [{"role": "system", "content": system}, *swapped] + (
            [] if swapped and swapped[-1]["role"] == "user" else [{"role": "user", "content": "(your turn)"}])
