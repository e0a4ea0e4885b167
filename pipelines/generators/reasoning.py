"""`generate.reasoning`: reasoning-first answers. The assistant turn carries its reasoning in
`Message.reasoning` (rendered as <think>...</think> by the exporters) and the final answer in `content`.

Where the task comes from, per input sample:
- `meta.task` (from `seeds.gsm8k` / `seeds.jsonl`): solved as is; `meta.reference_answer`, when the seed
  had one, stays in meta for the correctness verifier;
- otherwise the sample's persona: the model first writes a problem that person would need worked out
  (dropped as not_a_question when it asks nothing, copied_example when it repeats an example).

Templates: `fewshot` (base models such as the embedded Gemma 3 270M) asks twice, once for the reasoning
(it stops at "### Answer") and once for the answer given that reasoning, so the two are never mixed;
`chat` (instruct models) asks once and splits the <think> block out of the reply (or takes the backend's
parsed `reasoning` when `output_parser: lfm2` is set). A reply without reasoning or without an answer is
dropped with a verdict.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from typing import Any, Literal

from pydantic import Field

from pipelines.core.registry import register
from pipelines.core.sample import Message, Sample
from pipelines.core.step import Params
from pipelines.generators import calls
from pipelines.generators.batch_step import BatchGenerator
from pipelines.generators.calls import Usage, drop, request_drop, run_batch, sampling, tidy
from pipelines.generators.templates import derive_seed, examples, render, template_hash
from pipelines.llm.client import Request
from pipelines.llm.errors import RequestError

_FOLDER = "reasoning"
GENERATOR = "generate.reasoning"
_STOP_REASONING = ("\n### Answer", "\n###", "\n\n\n")
_STOP_ANSWER = ("\n", "###")
_STOP_TASK = ("\n###", "\n\n")
_THINK = re.compile(r"<think>(.*?)</think>(.*)", re.S)


class ReasoningParams(Params):
    template: Literal["fewshot", "chat"] = Field(
        "fewshot", description="fewshot: completion prompts for base models; chat: chat API for instruct models")
    n_examples: int = Field(3, ge=0, le=6, description="worked examples per few-shot prompt")
    max_task_tokens: int = Field(80, ge=8, description="for tasks written per persona")
    max_reasoning_tokens: int = Field(256, ge=8)
    max_answer_tokens: int = Field(32, ge=1)
    batch_size: int = Field(8, ge=1, description="samples whose requests go to the model together")


def solve_prompt(question: str, shots: list[dict[str, Any]], reasoning: str | None = None) -> str:
    return render(f"{_FOLDER}/fewshot.jinja", examples=shots, question=question, reasoning=reasoning)


def draw_shots(seed: int, sample_id: str, n: int, pool_key: str = "solve") -> list[dict[str, Any]]:
    pool = examples(f"{_FOLDER}/examples.yaml")[pool_key]
    return random.Random(derive_seed(seed, sample_id, "examples", pool_key)).sample(pool, min(n, len(pool)))


def split_think(text: str) -> tuple[str, str] | None:
    """(reasoning, answer) from '<think>r</think>answer', or None when there is no think block."""
    m = _THINK.search(text)
    return (m.group(1).strip(), m.group(2).strip()) if m else None


@register(GENERATOR)
class Reasoning(BatchGenerator):
    Params = ReasoningParams
    prompt_folders = (_FOLDER,)

    # ---- one batch, stage by stage ----------------------------------------------------------------

    def _batch(self, batch: list[Sample]) -> list[Sample]:
        p = self.params
        usage = {s.id: Usage() for s in batch}
        done: dict[str, Sample] = {}  # sample id -> dropped sample
        tasks: dict[str, str] = {}
        # Stage 1: tasks for samples that have none yet (generated per persona).
        need = [s for s in batch if not s.meta.get("task")]
        for s, result in zip(need, run_batch(self.ctx, [self._task_request(s) for s in need])):
            usage[s.id].add(result)
            text = self._text(s, result, "task", done)
            if text is None:
                continue
            if calls.copies_example(text, [ex["task"] for ex in examples(f"{_FOLDER}/examples.yaml")["tasks"]]):
                done[s.id] = drop(s, self.ctx, "copied_example", task=text)
            elif "?" not in text:  # a problem to work out asks something; a bare statement cannot be solved
                done[s.id] = drop(s, self.ctx, "not_a_question", task=text)
            else:
                tasks[s.id] = text
        for s in batch:
            if s.meta.get("task"):
                tasks[s.id] = s.meta["task"]
        live = [s for s in batch if s.id not in done]
        # Stage 2: reasoning (fewshot) or reasoning + answer in one reply (chat).
        thoughts: dict[str, tuple[str, str | None]] = {}
        requests = [self._solve_request(s, tasks[s.id]) for s in live]
        for s, result in zip(live, run_batch(self.ctx, requests)):
            usage[s.id].add(result)
            if isinstance(result, RequestError):
                done[s.id] = request_drop(s, self.ctx, result, "reasoning")
                continue
            parsed = self._parse(result[0], p.template == "chat")
            if isinstance(parsed, str):
                done[s.id] = drop(s, self.ctx, parsed, raw=result[0].text)
            else:
                thoughts[s.id] = parsed
        # Stage 3 (fewshot only): the answer, given the reasoning.
        ask = [s for s in live if s.id in thoughts and thoughts[s.id][1] is None]
        requests = [self._answer_request(s, tasks[s.id], thoughts[s.id][0]) for s in ask]
        for s, result in zip(ask, run_batch(self.ctx, requests)):
            usage[s.id].add(result)
            if isinstance(result, RequestError):
                done[s.id] = request_drop(s, self.ctx, result, "answer")
                continue
            answer = result[0].text.strip()
            if not answer:
                done[s.id] = drop(s, self.ctx, "empty_answer", reasoning=thoughts[s.id][0])
            else:
                thoughts[s.id] = (thoughts[s.id][0], answer)
        return [done.get(s.id) or self._sample(s, tasks[s.id], *thoughts[s.id], usage[s.id]) for s in batch]

    def _parse(self, completion: Any, chat: bool) -> tuple[str, str | None] | str:
        """(reasoning, answer or None) or a drop reason."""
        if chat:
            if completion.reasoning:  # the backend parsed the think block already
                reasoning, answer = completion.reasoning.strip(), completion.text.strip()
            else:
                split = split_think(completion.text)
                if split is None:
                    return "no_reasoning_block"
                reasoning, answer = split
            if not reasoning:
                return "empty_reasoning"
            return (reasoning, answer) if answer else "empty_answer"
        reasoning = tidy(completion.text, completion.finish_reason == "length")
        return (reasoning, None) if reasoning else "empty_reasoning"

    # ---- requests ---------------------------------------------------------------------------------

    def _task_request(self, s: Sample) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        description = calls.persona_text(s) or calls.DEFAULT_PERSONA
        if p.template == "chat":
            messages = ({"role": "user", "content": render(f"{_FOLDER}/chat_task.jinja",
                                                           persona_description=description)},)
            return Request(sampling(cfg, p.max_task_tokens, (), s.id, "task"), messages=messages)
        shots = draw_shots(cfg["seed"], s.id, p.n_examples, "tasks")
        prompt = render(f"{_FOLDER}/fewshot_task.jinja", examples=shots, persona_description=description,
                        who=calls.persona_label(s), wants=calls.persona_goal(s))
        return Request(sampling(cfg, p.max_task_tokens, _STOP_TASK, s.id, "task"), prompt=prompt)

    def _solve_request(self, s: Sample, task: str) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        if p.template == "chat":
            messages = ({"role": "system", "content": render(f"{_FOLDER}/chat_system.jinja")},
                        {"role": "user", "content": task})
            tokens = p.max_reasoning_tokens + p.max_answer_tokens
            return Request(sampling(cfg, tokens, (), s.id, task, "solve"), messages=messages)
        prompt = solve_prompt(task, draw_shots(cfg["seed"], s.id, p.n_examples))
        return Request(sampling(cfg, p.max_reasoning_tokens, _STOP_REASONING, s.id, task, "reasoning"), prompt=prompt)

    def _answer_request(self, s: Sample, task: str, reasoning: str) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        prompt = solve_prompt(task, draw_shots(cfg["seed"], s.id, p.n_examples), reasoning)
        # The answer is copied out of finished reasoning: a low temperature keeps it consistent with it.
        return Request(sampling(cfg, p.max_answer_tokens, _STOP_ANSWER, s.id, task, "answer",
                                temperature=min(cfg["temperature"], 0.2)), prompt=prompt)

    # ---- result -----------------------------------------------------------------------------------

    def _sample(self, seed: Sample, task: str, reasoning: str, answer: str | None, usage: Usage) -> Sample:
        p = self.params
        tname = f"{_FOLDER}/{'fewshot.jinja' if p.template == 'fewshot' else 'chat_system.jinja'}"
        extra: dict[str, Any] = {"task_source": "seed" if seed.meta.get("task") else "persona"}
        if not seed.meta.get("task"):
            task_t = f"{_FOLDER}/{'fewshot_task.jinja' if p.template == 'fewshot' else 'chat_task.jinja'}"
            extra.update(task_template=task_t, task_template_hash=template_hash(task_t))
        prov = calls.provenance(seed, self.ctx, GENERATOR, tname, template_hash(tname), usage, **extra)
        messages = [Message("user", task), Message("assistant", answer or "", reasoning=reasoning)]
        return replace(seed, kind="reasoning", messages=messages, provenance=prov, meta={**seed.meta, "task": task})
