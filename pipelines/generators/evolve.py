"""`generate.evolve`: Evol-Instruct style instruction evolution, then an answer to the evolved instruction.

Operations (chosen per sample and round, seeded by the sample's content):
- deepen:      the same subject in more depth (why, how, trade-offs);
- broaden:     the same field, a different and rarer topic;
- constraints: the same request plus one or two concrete requirements (length, format, audience, avoid X);
- concretise:  general wording replaced by a specific situation with names, numbers and details.

The seed instruction is, in order: `meta.task` (e.g. from `seeds.jsonl`), the first user turn of a chat
sample, or a first request the model writes for the sample's persona. Each of `rounds` rounds rewrites the
previous result. As in Evol-Instruct, a failed evolution is eliminated: a rewrite that is empty, too short,
the same as its input, or a copy of a few-shot example is eliminated (evolution_unchanged,
evolution_too_short, copied_example). A stage whose text fails its checks is asked again with a new
seed (`retries`); a sample is dropped with the reason only when every attempt fails (the 0.5B instruct
teacher, one attempt per stage: 0 of 10 quickstart personas survived). With
`answer: false` the evolved instruction is emitted as a seed (meta.task) for another generator.
"""

from __future__ import annotations

import re
from dataclasses import replace

from pydantic import Field, field_validator

from pipelines.core.registry import register
from pipelines.core.sample import Message, Sample
from pipelines.core.step import Params
from pipelines.generators import calls, turn_checks, user_voice
from pipelines.generators.batch_step import BatchGenerator
from pipelines.generators.calls import Usage, sampling
from pipelines.generators.templates import derive_seed, examples, render, template_hash
from pipelines.llm.client import Request
from pipelines.llm.prompt_style import PromptStyled, Template, template_field

_FOLDER = "evolve"
GENERATOR = "generate.evolve"
OPERATIONS = ("deepen", "broaden", "constraints", "concretise")
_STOP = ("\n###", "\n\n")
_STOP_ANSWER = ("\n###", "\n\n\n")
_WORDS = re.compile(r"\w+")
# A rewrite that keeps this share of its word trigrams from the input changed next to nothing ("What kind of
# help ..." -> "What type of help ...", read from the 0.5B teacher).
_SAME = 0.7


class EvolveParams(Params):
    operations: list[str] = Field(default_factory=lambda: list(OPERATIONS),
                                  description=f"operations to draw from: {', '.join(OPERATIONS)}")
    rounds: int = Field(1, ge=1, le=5, description="evolutions applied one after another")
    template: Template = template_field()
    n_examples: int = Field(3, ge=1, le=4, description="example rewrites per few-shot prompt")
    answer: bool = Field(True, description="also write the assistant's answer; false: emit the instruction as a seed")
    min_chars: int = Field(20, ge=1, description="shorter rewrites are eliminated")
    max_instruction_tokens: int = Field(96, ge=8)
    max_answer_tokens: int = Field(320, ge=8)
    retries: int = Field(2, ge=0, le=5, description="new attempts (new seed) for a stage (seed, a round, the "
                                                    "answer) whose text fails its checks")
    batch_size: int = Field(8, ge=1, description="samples whose requests go to the model together")

    @field_validator("operations")
    @classmethod
    def _known(cls, ops: list[str]) -> list[str]:
        unknown = [o for o in ops if o not in OPERATIONS]
        if not ops or unknown:
            raise ValueError(f"operations must be a non-empty list of {list(OPERATIONS)}; unknown: {unknown}")
        return ops


def _retry(attempt: int) -> tuple:
    """Seed parts of a retry; the first attempt keeps the seed it always had (cache hits on rerun)."""
    return ("retry", attempt) if attempt else ()


def _norm(text: str) -> str:
    return " ".join(_WORDS.findall(text.casefold()))


def seed_instruction(s: Sample) -> str | None:
    if s.meta.get("task"):
        return str(s.meta["task"])
    first_user = next((m.content for m in s.messages if m.role == "user" and m.content.strip()), None)
    return first_user


@register(GENERATOR)
class Evolve(PromptStyled, BatchGenerator):
    Params = EvolveParams
    prompt_folders = (_FOLDER, "multi_turn")  # multi_turn: the few-shot seed examples

    def _batch(self, batch: list[Sample]) -> list[Sample]:
        p = self.params
        usage = {s.id: Usage() for s in batch}
        done: dict[str, Sample] = {}
        history: dict[str, list[dict[str, str]]] = {s.id: [] for s in batch}
        # Stage 0: a first request from the persona, for samples that bring no instruction.
        shown = [ex["turns"][0]["user"] for ex in examples("multi_turn/examples.yaml")]
        need = [s for s in batch if seed_instruction(s) is None]
        current = self._stage(need, self._seed_request, "seed", done, usage, p.retries, lambda s: {
            "voice": "user", "check": lambda t: self._failed_seed(s, t, shown)})
        current.update({s.id: seed_instruction(s) for s in batch if s.id not in {n.id for n in need}})  # type: ignore[misc]
        seeds = dict(current)
        # Rounds of evolution, each over every sample still alive.
        for r in range(p.rounds):
            live = [s for s in batch if s.id not in done]
            ops = {s.id: self._operation(s, r) for s in live}
            evolved = self._stage(
                live, lambda s, a: self._evolve_request(s, current[s.id], ops[s.id], r, a), f"evolve_{r}", done,
                usage, p.retries, lambda s: {"voice": "user" if self.style == "chat" else None,
                                             "check": lambda t: self._failed_evolution(t, current[s.id], ops[s.id]),
                                             "operation": ops[s.id], "before": current[s.id]})
            for sid, text in evolved.items():
                history[sid].append({"operation": ops[sid], "before": current[sid], "after": text})
                current[sid] = text
        answers: dict[str, str] = {}
        if p.answer:
            live = [s for s in batch if s.id not in done]
            answers = self._stage(live, lambda s, a: self._answer_request(s, current[s.id], a), "answer", done,
                                  usage, p.retries, lambda s: {"voice": "assistant", "asked": current[s.id]})
        return [done.get(s.id) or self._sample(s, seeds[s.id], history[s.id], answers.get(s.id), usage[s.id])
                for s in batch]

    def _failed_seed(self, s: Sample, text: str, shown: list[str]) -> str | None:
        if calls.copies_example(text, shown):
            return "copied_example"
        return "off_goal" if self.style == "chat" and calls.off_goal(text, calls.persona_goal(s)) else None

    def _failed_evolution(self, text: str, before: str, op: str) -> str | None:
        """Evol-Instruct's elimination: a rewrite that changed (next to) nothing, is too short, or copies an
        example; on instruct models also one that asks for nothing (the 0.5B teacher answered the
        instruction instead of rewriting it: "To build a glossary ..., consider the following key points")."""
        if _norm(text) == _norm(before) or turn_checks.containment(text, before) >= _SAME:
            return "evolution_unchanged"
        if len(text) < self.params.min_chars:
            return "evolution_too_short"
        if calls.copies_example(text, self._shown(op)):
            return "copied_example"
        return "not_a_request" if self.style == "chat" and not turn_checks.asks_something(text) else None

    @staticmethod
    def _shown(op: str) -> list[str]:
        return [t for ex in examples(f"{_FOLDER}/examples.yaml")["operations"][op]["examples"]
                for t in (ex["before"], ex["after"])]

    def _operation(self, s: Sample, round_index: int) -> str:
        ops = self.params.operations
        return ops[derive_seed(self.ctx.llm_config["seed"], s.id, "operation", round_index) % len(ops)]

    # ---- requests ---------------------------------------------------------------------------------

    def _seed_request(self, s: Sample, attempt: int = 0) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        description = calls.persona_text(s) or calls.DEFAULT_PERSONA
        smp = sampling(cfg, p.max_instruction_tokens, _STOP if self.style == "fewshot" else (), s.id, "seed",
                       *_retry(attempt))
        if self.style == "chat":
            smp = replace(smp, max_tokens=smp.max_tokens + 128)  # the situation scratchpad comes first
            return user_voice.opening_for(s, smp)
        shots = self._shots(s, "seed", examples("multi_turn/examples.yaml"))
        return Request(smp, prompt=render(f"{_FOLDER}/fewshot_seed.jinja", examples=shots,
                                          persona_description=description))

    def _evolve_request(self, s: Sample, instruction: str, op: str, r: int, attempt: int = 0) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        spec = examples(f"{_FOLDER}/examples.yaml")["operations"][op]
        smp = sampling(cfg, p.max_instruction_tokens, _STOP if self.style == "fewshot" else (),
                       s.id, instruction, op, r, *_retry(attempt))
        if self.style == "chat":
            text = render(f"{_FOLDER}/chat_evolve.jinja", how=spec["how"], instruction=instruction)
            return Request(smp, messages=({"role": "user", "content": text},))
        shots = self._shots(s, f"{op}_{r}", spec["examples"])
        return Request(smp, prompt=render(f"{_FOLDER}/fewshot.jinja", how=spec["how"], examples=shots,
                                          instruction=instruction))

    def _answer_request(self, s: Sample, instruction: str, attempt: int = 0) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        smp = sampling(cfg, p.max_answer_tokens, _STOP_ANSWER if self.style == "fewshot" else (),
                       s.id, instruction, "answer", *_retry(attempt))
        if self.style == "chat":
            system = render(f"{_FOLDER}/chat_answer.jinja")
            return Request(smp, messages=({"role": "system", "content": system}, {"role": "user", "content": instruction}))
        shots = self._shots(s, "answer", examples(f"{_FOLDER}/examples.yaml")["answers"])
        return Request(smp, prompt=render(f"{_FOLDER}/fewshot_answer.jinja", examples=shots, instruction=instruction))

    # ---- result -----------------------------------------------------------------------------------

    def _sample(self, seed: Sample, seed_text: str, history: list[dict[str, str]], answer: str | None,
                usage: Usage) -> Sample:
        p = self.params
        tname = f"{_FOLDER}/{'fewshot.jinja' if self.style == 'fewshot' else 'chat_evolve.jinja'}"
        instruction = history[-1]["after"]
        prov = calls.provenance(
            seed, self.ctx, GENERATOR, tname, template_hash(tname), usage,
            operations=[h["operation"] for h in history],
            seed_source="meta.task" if seed.meta.get("task") else ("messages" if seed.messages else "persona"),
        )
        meta = {**seed.meta, "seed_instruction": seed_text, "evolution": history}
        if not p.answer:
            return replace(seed, kind="seed", messages=[], provenance=prov, meta={**meta, "task": instruction})
        meta.pop("task", None)  # the instruction now lives in the conversation
        messages = [Message("user", instruction), Message("assistant", answer or "")]
        return replace(seed, kind="chat", messages=messages, provenance=prov, meta=meta)
