"""`generate.reasoning`: reasoning-first answers. The assistant turn carries its reasoning in
`Message.reasoning` (rendered as <think>...</think> by the exporters) and the final answer in `content`.

Where the task comes from, per input sample:
- `meta.task` (from `seeds.gsm8k` / `seeds.jsonl`): solved as is; `meta.reference_answer`, when the seed
  had one, stays in meta for the correctness verifier;
- otherwise the sample's persona: the model first writes a problem that person would need worked out
  (dropped as not_a_question when it asks nothing, copied_example when it repeats an example).

Templates: `fewshot` (base models such as the embedded Gemma 3 270M) asks twice, once for the reasoning
(it stops at "### Answer") and once for the answer given that reasoning, so the two are never mixed;
`chat` (instruct models) asks once for worked steps ending in an "Answer: ..." line and splits there (a
reply with a <think> block is split at it, and with `output_parser: lfm2` the backend's parsed `reasoning`
is taken); a reply with no final answer line is dropped as `no_final_answer`. A reply without reasoning or without an answer is
dropped with a verdict.

Rejection sampling (chat, `attempts` > 1): each problem gets that many solutions. When the seed has a
reference answer (GSM8K), every attempt's answer is checked with math-verify; the first correct one is the
sample, the problem is dropped as `no_verified_attempt` when none is, and a wrong attempt rides along as a
rejected candidate (score 0 against the kept one's 1), so the preference export gets a (right, wrong) pair.
Without a reference, answers are grouped by math-verify equality; the first attempt of the largest group is
kept when that group holds at least `min_agreement` of the attempts (else `low_agreement`), and the share
is recorded as `meta.agreement`. Either way an attempt whose written arithmetic is wrong ("3 * 30 = 80",
`pipelines.formats.worked_steps`) is not kept, right answer or not (`arithmetic_slip` when that alone
stood in the way). Each attempt's answer and outcome is kept in `meta.attempts`.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import Field

from pipelines.core.registry import register
from pipelines.core.sample import Candidate, Message, Sample
from pipelines.core.step import Params
from pipelines.generators import calls, user_voice
from pipelines.generators.batch_step import BatchGenerator
from pipelines.generators.calls import Usage, drop, request_drop, run_batch, sampling, tidy
from pipelines.formats import math_answers, worked_steps
from pipelines.formats.math_answers import answers_match
from pipelines.generators.templates import derive_seed, examples, render, template_hash
from pipelines.llm.client import Request
from pipelines.llm.errors import RequestError
from pipelines.llm.prompt_style import PromptStyled, Template, template_field

_FOLDER = "reasoning"
GENERATOR = "generate.reasoning"
_STOP_REASONING = ("\n### Answer", "\n###", "\n\n\n")
_STOP_ANSWER = ("\n", "###")
_STOP_TASK = ("\n###", "\n\n")
_THINK = re.compile(r"<think>(.*?)</think>(.*)", re.S)
_ANSWER_LINE = re.compile(r"^\W{0,3}(?:final )?answer\W{0,3}:[\s*_]*(.+?)\s*$", re.I | re.M)


# A solution that "runs" code it cannot run: Qwen2.5-Coder writes ```python ... ``` then an invented
# ```output``` block and reads its answer off it (7 of 47 quickstart and loop-recipe solutions).
_IMAGINED_RUN = re.compile(r"```\s*output\b", re.IGNORECASE)


def split_answer_line(text: str) -> tuple[str, str] | None:
    """(reasoning, answer) split at the last "Answer: ..." line, else before a \\boxed{} answer on one of the
    last two lines ("Therefore, the total is \\(\\boxed{186}\\)."), or None when there is neither.
    The 0.5B teacher ends 7 of 18 quickstart attempts with a boxed sentence instead of the asked-for line."""
    found = list(_ANSWER_LINE.finditer(text))
    if found:
        last = found[-1]
        return text[:last.start()].strip(), last.group(1).strip().rstrip("*").strip()
    lines = text.rstrip().splitlines()
    last = next((i for i in range(len(lines) - 1, 0, -1) if "\\boxed{" in lines[i]), None)
    if last is not None and last >= len(lines) - 2:  # the box is at the end, not in a worked line
        return "\n".join(lines[:last]).strip(), lines[last].strip()
    return None


class ReasoningParams(Params):
    template: Template = template_field()
    n_examples: int = Field(3, ge=0, le=6, description="worked examples per few-shot prompt")
    max_task_tokens: int = Field(80, ge=8, description="for tasks written per persona")
    max_reasoning_tokens: int = Field(256, ge=8)
    max_answer_tokens: int = Field(32, ge=1)
    batch_size: int = Field(8, ge=1, description="samples whose requests go to the model together")
    attempts: int = Field(1, ge=1, le=16, description="chat: solutions sampled per problem (rejection sampling). "
                          "With a reference answer, the first attempt math-verify accepts is kept; without one, "
                          "the majority answer (self-consistency)")
    min_agreement: float = Field(0.5, gt=0.0, le=1.0, description="no reference, attempts > 1: the majority "
                                 "answer's share of the attempts needed to keep the problem")


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
class Reasoning(PromptStyled, BatchGenerator):
    Params = ReasoningParams
    prompt_folders = (_FOLDER,)

    @classmethod
    def fingerprint_files(cls) -> list:
        return [*super().fingerprint_files(), Path(math_answers.__file__), Path(worked_steps.__file__)]

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
            text = self._text(s, result, "task", done, voice="user")
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
        # Stage 2: reasoning (fewshot) or reasoning + answer in one reply (chat), `attempts` times.
        thoughts: dict[str, tuple[str, str | None]] = {}
        graded: dict[str, dict[str, Any]] = {}
        requests = [self._solve_request(s, tasks[s.id]) for s in live]
        for s, result in zip(live, run_batch(self.ctx, requests)):
            usage[s.id].add(result)
            if isinstance(result, RequestError):
                done[s.id] = request_drop(s, self.ctx, result, "reasoning")
                continue
            tries = [self._parse(c, self.style == "chat") for c in result]
            solved = [t for t in tries if not isinstance(t, str)]
            if not solved:
                done[s.id] = drop(s, self.ctx, tries[0], raw=result[0].text)
            elif self.style == "chat" and (p.attempts > 1 or s.meta.get("reference_answer") is not None):
                grade = grade_attempts(solved, s.meta.get("reference_answer"), p.min_agreement)
                graded_iter = iter(grade["attempts"])  # every attempt in sampling order, unparsed ones too
                grade["attempts"] = [{"answer": None, "correct": False, "problem": t} if isinstance(t, str)
                                     else next(graded_iter) for t in tries]
                if grade["kept"] is None:
                    done[s.id] = drop(s, self.ctx, grade["reason"], attempts=grade["attempts"])
                else:
                    thoughts[s.id], graded[s.id] = solved[grade["kept"]], {**grade, "solved": solved}
            else:
                thoughts[s.id] = solved[0]
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
        return [done.get(s.id) or self._sample(s, tasks[s.id], *thoughts[s.id], usage[s.id], graded.get(s.id))
                for s in batch]

    def _parse(self, completion: Any, chat: bool) -> tuple[str, str | None] | str:
        """(reasoning, answer or None) or a drop reason."""
        if chat:
            if completion.reasoning:  # the backend parsed the think block already
                reasoning, answer = completion.reasoning.strip(), completion.text.strip()
            else:
                if _IMAGINED_RUN.search(completion.text):
                    return "imagined_code_output"
                split = split_think(completion.text) or split_answer_line(completion.text)
                if split is None:
                    return "truncated_answer" if completion.finish_reason == "length" else "no_final_answer"
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
        if self.style == "chat":
            return user_voice.opening(description, "to work out a problem from their own situation step by step "
                                      "(arithmetic, planning or logic), giving every number needed to solve it",
                                      sampling(cfg, p.max_task_tokens + 128, (), s.id, "task"))
        shots = draw_shots(cfg["seed"], s.id, p.n_examples, "tasks")
        prompt = render(f"{_FOLDER}/fewshot_task.jinja", examples=shots, persona_description=description,
                        who=calls.persona_label(s), wants=calls.persona_goal(s))
        return Request(sampling(cfg, p.max_task_tokens, _STOP_TASK, s.id, "task"), prompt=prompt)

    def _solve_request(self, s: Sample, task: str) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        if self.style == "chat":
            messages = ({"role": "system", "content": render(f"{_FOLDER}/chat_system.jinja")},
                        {"role": "user", "content": task})
            tokens = p.max_reasoning_tokens + p.max_answer_tokens
            return Request(sampling(cfg, tokens, (), s.id, task, "solve"), messages=messages, n=p.attempts)
        prompt = solve_prompt(task, draw_shots(cfg["seed"], s.id, p.n_examples))
        return Request(sampling(cfg, p.max_reasoning_tokens, _STOP_REASONING, s.id, task, "reasoning"), prompt=prompt)

    def _answer_request(self, s: Sample, task: str, reasoning: str) -> Request:
        p, cfg = self.params, self.ctx.llm_config
        prompt = solve_prompt(task, draw_shots(cfg["seed"], s.id, p.n_examples), reasoning)
        # The answer is copied out of finished reasoning: a low temperature keeps it consistent with it.
        return Request(sampling(cfg, p.max_answer_tokens, _STOP_ANSWER, s.id, task, "answer",
                                temperature=min(cfg["temperature"], 0.2)), prompt=prompt)

    # ---- result -----------------------------------------------------------------------------------

    def _sample(self, seed: Sample, task: str, reasoning: str, answer: str | None, usage: Usage,
                graded: dict[str, Any] | None = None) -> Sample:
        p = self.params
        tname = f"{_FOLDER}/{'fewshot.jinja' if self.style == 'fewshot' else 'chat_system.jinja'}"
        extra: dict[str, Any] = {"task_source": "seed" if seed.meta.get("task") else "persona"}
        if not seed.meta.get("task"):
            task_t = f"{_FOLDER}/fewshot_task.jinja" if self.style == "fewshot" else f"{user_voice.FOLDER}/open.jinja"
            extra.update(task_template=task_t, task_template_hash=template_hash(task_t))
        prov = calls.provenance(seed, self.ctx, GENERATOR, tname, template_hash(tname), usage, **extra)
        messages = [Message("user", task), Message("assistant", answer or "", reasoning=reasoning)]
        meta: dict[str, Any] = {**seed.meta, "task": task}
        candidates: list[Candidate] = []
        if graded is not None:
            meta["attempts"] = graded["attempts"]
            if graded.get("agreement") is not None:
                meta["agreement"] = graded["agreement"]
            if graded["rejected"] is not None:  # a (right, wrong) pair for the preference export
                for index, score in ((graded["kept"], 1.0), (graded["rejected"], 0.0)):
                    r, a = graded["solved"][index]
                    candidates.append(Candidate(Message("assistant", a or "", reasoning=r),
                                                {"attempt": index, "generator": GENERATOR}, score))
        return replace(seed, kind="reasoning", messages=messages, provenance=prov, meta=meta, candidates=candidates)


def grade_attempts(solved: list[tuple[str, str | None]], reference: Any, min_agreement: float) -> dict[str, Any]:
    """Which attempt to keep (index or None, with the drop reason), which wrong one to pair it with, and
    each attempt's answer and outcome. One verifier for generation and filtering (filter.math_answer).

    An attempt whose written arithmetic is wrong (`worked_steps.slips`) is never kept, even with the right
    final answer, and it is the first choice for the rejected candidate: that pair differs in the working,
    which is what a checked final answer alone cannot teach. When only slips stood in the way, the reason
    is `arithmetic_slip`."""
    answers = [a or "" for _, a in solved]
    slipped = [worked_steps.slips(f"{r}\n{a or ''}") for r, a in solved]
    if reference is not None:
        right = [answers_match(str(reference), a)[0] for a in answers]
        correct = [ok and not slips for ok, slips in zip(right, slipped)]
        attempts = [{"answer": a, "correct": ok, **({"slips": sl} if sl else {})}
                    for a, ok, sl in zip(answers, correct, slipped)]
        kept = correct.index(True) if True in correct else None
        wrong = [i for i, ok in enumerate(correct) if not ok]
        rejected = min(wrong, key=lambda i: not (right[i] and slipped[i])) if kept is not None and wrong else None
        reason = None if kept is not None else "arithmetic_slip" if any(right) else "no_verified_attempt"
        return {"kept": kept, "rejected": rejected, "attempts": attempts, "agreement": None, "reason": reason}
    groups: list[list[int]] = []  # attempts whose answers math-verify finds equal
    for i, a in enumerate(answers):
        home = next((g for g in groups if answers_match(answers[g[0]], a)[0]), None)
        if home is None:
            groups.append([i])
        else:
            home.append(i)
    top = max(groups, key=len)
    share = round(len(top) / len(answers), 4)
    attempts = [{"answer": a, "majority": i in top, **({"slips": sl} if sl else {})}
                for i, (a, sl) in enumerate(zip(answers, slipped))]
    agreed = share >= min_agreement and (len(answers) == 1 or len(top) > 1)
    kept = next((i for i in top if not slipped[i]), None) if agreed else None
    rejected = next((i for i in range(len(answers)) if i not in top or slipped[i]), None) if kept is not None else None
    reason = None if kept is not None else "arithmetic_slip" if agreed else "low_agreement"
    return {"kept": kept, "rejected": rejected, "attempts": attempts, "agreement": share, "reason": reason}
