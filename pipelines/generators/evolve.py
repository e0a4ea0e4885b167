"""`generate.evolve`: Evol-Instruct style instruction evolution, then an answer to the evolved instruction.

Operations (chosen per sample and round, seeded by the sample's content):
- deepen:      the same subject in more depth (why, how, trade-offs);
- broaden:     the same field, a different and rarer topic;
- constraints: the same request plus one or two concrete requirements (length, format, audience, avoid X);
- concretise:  general wording replaced by a specific situation with names, numbers and details.

The seed instruction is, in order: `meta.task` (e.g. from `seeds.jsonl`), the first user turn of a chat
sample, or a first request the model writes for the sample's persona. Each of `rounds` rounds rewrites the
previous result. As in Evol-Instruct, a failed evolution is eliminated: a rewrite that is empty, too short,
the same as its input, or a copy of a few-shot example is dropped with a verdict (evolution_unchanged,
evolution_too_short, copied_example). With
`answer: false` the evolved instruction is emitted as a seed (meta.task) for another generator.
"""

from __future__ import annotations

import re
from dataclasses import replace

from pydantic import Field, field_validator

from pipelines.core.registry import register
from pipelines.core.sample import Message, Sample
from pipelines.core.step import Params
from pipelines.generators import calls, user_voice
from pipelines.generators.batch_step import BatchGenerator
from pipelines.generators.calls import Usage, drop, run_batch, sampling
from pipelines.generators.templates import derive_seed, examples, render, template_hash
from pipelines.llm.client import Request
from pipelines.llm.prompt_style import PromptStyled, Template, template_field

_FOLDER = "evolve"
GENERATOR = "generate.evolve"
OPERATIONS = ("deepen", "broaden", "constraints", "concretise")
_STOP = ("\n###", "\n\n")
_STOP_ANSWER = ("\n###", "\n\n\n")
_WORDS = re.compile(r"\w+")


class EvolveParams(Params):
    operations: list[str] = Field(default_factory=lambda: list(OPERATIONS),
                                  description=f"operations to draw from: {', '.join(OPERATIONS)}")
    rounds: int = Field(1, ge=1, le=5, description="evolutions applied one after another")
    template: Template = template_field()
    n_examples: int = Field(3, ge=1, le=4, description="example rewrites per few-shot prompt")
    answer: bool = Field(True, description="also write the assistant's answer; false: emit the instruction as a seed")
    min_chars: int = Field(20, ge=1, description="shorter rewrites are eliminated")
    max_instruction_tokens: int = Field(96, ge=8)
    max_answer_tokens: int = Field(200, ge=8)
    batch_size: int = Field(8, ge=1, description="samples whose requests go to the model together")

    @field_validator("operations")
    @classmethod
    def _known(cls, ops: list[str]) -> list[str]:
        unknown = [o for o in ops if o not in OPERATIONS]
        if not ops or unknown:
            raise ValueError(f"operations must be a non-empty list of {list(OPERATIONS)}; unknown: {unknown}")
        return ops


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
    prompt_folders = (_FOLDER, "multi_turn")

    def _batch(self, batch: list[Sample]) -> list[Sample]:
        p = self.params
        usage = {s.id: Usage() for s in batch}
        done: dict[str, Sample] = {}
        current: dict[str, str] = {}
        history: dict[str, list[dict[str, str]]] = {s.id: [] for s in batch}
        # Stage 0: a first request from the persona, for samples that bring no instruction.
        need = [s for s in batch if seed_instruction(s) is None]
        for s, result in zip(need, run_batch(self.ctx, [self._seed_request(s) for s in need])):
            usage[s.id].add(result)
            text = self._text(s, result, "seed", done, voice="user")
            if text is None:
                continue
            if calls.copies_example(text, [ex["turns"][0]["user"] for ex in examples("multi_turn/examples.yaml")]):
                done[s.id] = drop(s, self.ctx, "copied_example", seed=text)
            else:
                current[s.id] = text
        for s in batch:
            if s.id not in current and s.id not in done:
                current[s.id] = seed_instruction(s)  # type: ignore[assignment]
        seeds = dict(current)
        # Rounds of evolution, each over every sample still alive.
        for r in range(p.rounds):
            live = [s for s in batch if s.id not in done]
            ops = {s.id: self._operation(s, r) for s in live}
            requests = [self._evolve_request(s, current[s.id], ops[s.id], r) for s in live]
            for s, result in zip(live, run_batch(self.ctx, requests)):
                usage[s.id].add(result)
                text = self._text(s, result, f"evolve_{r}", done)
                if text is None:
                    continue
                before = current[s.id]
                if _norm(text) == _norm(before):
                    done[s.id] = drop(s, self.ctx, "evolution_unchanged", operation=ops[s.id], before=before)
                elif len(text) < p.min_chars:
                    done[s.id] = drop(s, self.ctx, "evolution_too_short", operation=ops[s.id], after=text)
                elif calls.copies_example(text, self._shown(ops[s.id])):
                    done[s.id] = drop(s, self.ctx, "copied_example", operation=ops[s.id], after=text)
                else:
                    history[s.id].append({"operation": ops[s.id], "before": before, "after": text})
                    current[s.id] = text
        answers: dict[str, str] = {}
        if p.answer:
            live = [s for s in batch if s.id not in done]
            for s, result in zip(live, run_batch(self.ctx, [self._answer_request(s, current[s.id]) for s in live])):
                usage[s.id].add(result)
                text = self._text(s, result, "answer", done, voice="assistant", asked=current[s.id])
                if text is not None:
                    answers[s.id] = text
        return [done.get(s.id) or self._sample(s, seeds[s.id], history[s.id], answers.get(s.id), usage[s.id])
                for s in batch]

    @staticmethod
    def _shown(op: str) -> list[str]:
        return [t for ex in examples(f"{_FOLDER}/examples.yaml")["operations"][op]["examples"]
                for t in (ex["before"], ex["after"])]

    def _operation(self, s: Sample, round_index: int) -> str:
        ops = self.params.operations
        return ops[derive_seed(self.ctx.llm_config["seed"], s.id, "operation", round_index) % len(ops)]

    # ---- requests ---------------------------------------------------------------------------------

    def _seed_request(self, s: Sample) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        description = calls.persona_text(s) or calls.DEFAULT_PERSONA
        smp = sampling(cfg, p.max_instruction_tokens, _STOP if self.style == "fewshot" else (), s.id, "seed")
        if self.style == "chat":
            smp = replace(smp, max_tokens=smp.max_tokens + 128)  # the situation scratchpad comes first
            return user_voice.opening_for(s, smp)
        shots = self._shots(s, "seed", examples("multi_turn/examples.yaml"))
        return Request(smp, prompt=render(f"{_FOLDER}/fewshot_seed.jinja", examples=shots,
                                          persona_description=description))

    def _evolve_request(self, s: Sample, instruction: str, op: str, r: int) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        spec = examples(f"{_FOLDER}/examples.yaml")["operations"][op]
        smp = sampling(cfg, p.max_instruction_tokens, _STOP if self.style == "fewshot" else (),
                       s.id, instruction, op, r)
        if self.style == "chat":
            text = render(f"{_FOLDER}/chat_evolve.jinja", how=spec["how"], instruction=instruction)
            return Request(smp, messages=({"role": "user", "content": text},))
        shots = self._shots(s, f"{op}_{r}", spec["examples"])
        return Request(smp, prompt=render(f"{_FOLDER}/fewshot.jinja", how=spec["how"], examples=shots,
                                          instruction=instruction))

    def _answer_request(self, s: Sample, instruction: str) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        smp = sampling(cfg, p.max_answer_tokens, _STOP_ANSWER if self.style == "fewshot" else (),
                       s.id, instruction, "answer")
        if self.style == "chat":
            return Request(smp, messages=({"role": "user", "content": instruction},))
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
