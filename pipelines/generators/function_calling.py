"""Function-calling conversations: persona-driven requests, constrained tool calls, real or simulated results.

For each persona seed the step picks a case and a plan (`pipelines.tools.selection`): single, parallel,
multiple (several tools offered, one right), multi_step (call -> result -> call -> answer) or no_tool
(tools offered, none needed). Then, stage by stage over a batch of samples:

1. first calls: the planned tools' calls, with values that fit the persona, decoded under a JSON schema
   that admits only those tools with arguments of the right shape (`pipelines.tools.decoding`; a llama.cpp
   grammar on the embedded model, `response_format` on servers). Calls come before the request because a
   small model verbalises given calls far more reliably than it invents a request that needs a given tool;
2. results: built-in tools run in Python (`pipelines.tools.executors`), others are LLM-simulated under a
   result schema (`pipelines.tools.simulated`);
3. request: the persona asks for exactly those calls, in their own voice; every argument value must appear
   in it (`pipelines.tools.grounding`);
4. choice check (multiple): the model, given the request and all offered tools, must pick the right tool;
5. later calls (multi_step): decoded from the conversation so far, grounded in the request and results;
6. answer: the assistant replies from the results (or directly, for no_tool).

A sample that fails a check is dropped with a Verdict naming the reason: calls_unparseable,
result_unparseable, empty_request, empty_answer, or a reason of `pipelines.tools.checks` (invalid_call,
wrong_tool, duplicate_calls, repeated_call, ungrounded_argument). Before a sample leaves, every call is
validated against its tool schema once more. Prompts: `fewshot` (base models such as the embedded Gemma 3
270M) or `chat` (instruct models). Request seeds come from the sample's content, never its position.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from pipelines.core.registry import register
from pipelines.core.sample import Sample, Verdict, canonical_json, content_hash
from pipelines.core.step import Params, Step
from pipelines.generators import calls as plumbing
from pipelines.generators.calls import Usage, batches, run_batch, tidy
from pipelines.generators.templates import PROMPTS, derive_seed, files_in, render, template_hash
from pipelines.llm.client import Request, Sampling
from pipelines.llm.errors import RequestError, drop_reason
from pipelines.tools.catalog import Catalog, catalog_from_tools, load_catalog, validate_sources
from pipelines.tools.checks import Steps, build_messages, check_grounded, check_turn
from pipelines.tools.decoding import calls_schema
from pipelines.tools.executors import builtin_executors
from pipelines.tools.fewshot import CASES, Example, load_examples, needs_line
from pipelines.tools.prompting import calls_json, result_json, signature
from pipelines.tools.schema import tool_name, validate_calls
from pipelines.tools.selection import Plan, make_plan
from pipelines.tools.simulated import read_result, simulation_request

_FOLDER = "function_calling"
_TOOLS_DIR = Path(__file__).resolve().parents[1] / "tools"
Case = Literal["single", "parallel", "multiple", "multi_step", "no_tool"]
TEMPLATES = {
    "fewshot": {"plan": "fewshot_plan.jinja", "request": "fewshot_request.jinja", "calls": "fewshot_transcript.jinja",
                "answer": "fewshot_transcript.jinja", "result": "fewshot_result.jinja"},
    "chat": {"plan": "chat_plan.jinja", "request": "chat_request.jinja", "calls": "chat_calls.jinja",
             "answer": "chat_answer.jinja", "result": "chat_result.jinja"},
}


class FunctionCallingParams(Params):
    catalog: list[str] = Field(
        default_factory=lambda: ["builtin"],
        description="tool sources: builtin, bfcl, bfcl:<category>, or .json/.jsonl files; seeds that carry "
                    "meta.tools (e.g. from tools.generate) use those instead")
    cases: list[Case] = Field(default_factory=lambda: list(CASES), description="cases drawn from, per seed")
    template: Literal["fewshot", "chat"] = Field(
        "fewshot", description="fewshot: completion prompts for base models; chat: chat API for instruct models")
    n_examples: int = Field(3, ge=1, le=6, description="few-shot examples per prompt")
    n_offered: int = Field(3, ge=2, le=8, description="tools offered in multiple-choice and no-tool samples")
    max_parallel: int = Field(3, ge=2, le=6, description="most calls in one parallel turn")
    call_temperature: float = Field(0.3, ge=0.0, le=2.0,
                                    description="temperature for calls decoded from the conversation")
    require_grounded: bool = Field(True, description="drop calls whose argument values are not in the "
                                                     "request or earlier results")
    choice_check: bool = Field(True, description="multiple: drop unless the model, given the request and all "
                                                 "offered tools, picks the planned one (one more request)")
    batch_size: int = Field(16, ge=1, description="samples whose requests go to the model together")
    max_request_tokens: int = Field(64, ge=8)
    max_call_tokens: int = Field(192, ge=16)
    max_result_tokens: int = Field(128, ge=16)
    max_answer_tokens: int = Field(96, ge=8)

    @field_validator("cases")
    @classmethod
    def _cases(cls, cases: list[str]) -> list[str]:
        if not cases or len(set(cases)) != len(cases):
            raise ValueError(f"name each case at most once, at least one of {list(CASES)}")
        return cases

    @field_validator("catalog")
    @classmethod
    def _catalog(cls, sources: list[str]) -> list[str]:
        validate_sources(sources)
        return sources


@dataclass
class _Work:
    """One sample in progress."""

    seed: Sample
    case: str
    catalog: Catalog
    plan: Plan
    shots: list[Example]
    usage: Usage = field(default_factory=Usage)
    request: str = ""
    answer: str = ""
    steps: Steps = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)  # calls of the turn awaiting results
    executors: dict[str, str] = field(default_factory=dict)
    verdict: Verdict | None = None

    @property
    def offered(self) -> list[dict[str, Any]]:
        return [self.catalog.tools[i] for i in self.plan.offered]

    @property
    def planned(self) -> list[list[str]]:
        return self.plan.step_names(self.catalog)

    def tools_named(self, names: list[str]) -> list[dict[str, Any]]:
        return [t for t in self.offered if tool_name(t) in names]

    def trace(self) -> dict[str, Any]:
        return {"case": self.case, "tools": [tool_name(t) for t in self.offered], "planned": self.planned,
                "request": self.request, "steps": [{"calls": c, "results": r} for c, r in self.steps]}


@register("generate.function_calling")
class FunctionCalling(Step):
    kind = "map"
    uses_llm = True
    Params = FunctionCallingParams

    @classmethod
    def fingerprint_files(cls) -> list[Path]:
        # Plans, schemas, executors and checks live in pipelines/tools: a change there changes the output.
        return [*files_in(_FOLDER), plumbing.HERE, *sorted(_TOOLS_DIR.glob("*.py")),
                *sorted((_TOOLS_DIR / "data").iterdir())]

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        for batch in batches(samples, self.params.batch_size):
            works = [self._start(s) for s in batch]
            self._first_calls(works)
            self._results(works)
            self._requests(works)
            self._choice_check(works)
            for k in range(1, max(len(w.plan.steps) for w in works)):
                self._later_calls(works, k)
                self._results(works)
            self._answers(works)
            for w in works:
                out = self._finish(w) if w.verdict is None else None
                if out is None:
                    self.ctx.counters[f"dropped_{w.case}"] += 1
                    yield w.seed.with_verdict(w.verdict)
                else:
                    self.ctx.counters[f"kept_{w.case}"] += 1
                    yield out

    # ---- plumbing -----------------------------------------------------------------------------------

    def _start(self, seed: Sample) -> _Work:
        p, cfg = self.params, self.ctx.llm_config
        rng = random.Random(derive_seed(cfg["seed"], seed.id, "plan"))
        if seed.meta.get("tools"):
            catalog = catalog_from_tools(seed.meta["tools"], seed.meta.get("result_schemas"))
        else:
            catalog = load_catalog(tuple(p.catalog))
        case = seed.meta.get("case") or rng.choice(p.cases)
        if case not in CASES:
            raise ValueError(f"seed {seed.id}: meta.case must be one of {CASES}, got {case!r}")
        plan = make_plan(case, catalog, rng, seed.persona, p.n_offered, p.max_parallel)
        targets = {n for step in plan.step_names(catalog) for n in step}
        return _Work(seed, case, catalog, plan, self._shots(case, rng, targets))

    def _shots(self, case: str, rng: random.Random, targets: set[str]) -> list[Example]:
        """Examples of the same case first, then others to fill up; examples that use a target tool only when
        nothing else is left, because a small model copies such an example's values word for word."""
        pool = load_examples(PROMPTS / _FOLDER / "examples.yaml")
        fresh = [e for e in pool if not targets & {tool_name(t) for t in e.tools}]
        same = [e for e in fresh if e.case == case] or [e for e in pool if e.case == case]
        chosen = rng.sample(same, min(len(same), max(1, self.params.n_examples - 1)))
        rest = [e for e in fresh if e.case != case and e not in chosen and (e.steps or case == "no_tool")]
        chosen += rng.sample(rest, min(len(rest), self.params.n_examples - len(chosen)))
        rng.shuffle(chosen)
        return chosen

    def _drop(self, w: _Work, reason: str, **details: Any) -> None:
        w.verdict = Verdict(self.ctx.step_name, False, reason, details={**w.trace(), **details})

    def _ask(self, items: list[tuple[_Work, Request]]) -> list[tuple[_Work, Any]]:
        results = run_batch(self.ctx, [r for _, r in items])
        for (w, _), res in zip(items, results):
            w.usage.add(res)
        return [(w, res) for (w, _), res in zip(items, results)]

    def _sampling(self, w: _Work, max_tokens: int, *parts: Any, temperature: float | None = None,
                  stop: tuple[str, ...] = ()) -> Sampling:
        return plumbing.sampling(self.ctx.llm_config, max_tokens, stop, w.seed.id, *parts, temperature=temperature)

    def _template(self, role: str) -> str:
        return f"{_FOLDER}/{TEMPLATES[self.params.template][role]}"

    def _live(self, works: list[_Work]) -> list[_Work]:
        return [w for w in works if w.verdict is None]

    def _history(self, w: _Work) -> list[dict[str, str]]:
        # Portable across servers: earlier calls as the assistant's JSON, results as a user turn.
        history = [{"role": "user", "content": w.request}]
        for calls, results in w.steps:
            history += [{"role": "assistant", "content": calls_json(calls)},
                        {"role": "user", "content": f"Tool results: {result_json(results)}"}]
        return history

    def _transcript(self, w: _Work, speaker: str) -> str:
        return render(self._template("calls"), examples=[s.transcript() for s in w.shots],
                      tools=[signature(t) for t in w.offered], request=w.request, speaker=speaker,
                      steps=[{"calls": calls_json(c), "results": result_json(r)} for c, r in w.steps])

    def _calls_request(self, w: _Work, tools: list[dict[str, Any]], n: tuple[int, int], prompt_or_system: str,
                       sampling: Sampling, chat_user: list[dict[str, str]]) -> Request:
        schema = calls_schema(tools, *n)
        if self.params.template == "fewshot":
            return Request(sampling=sampling, prompt=prompt_or_system + " ", json_schema=schema)
        return Request(sampling=sampling, json_schema=schema,
                       messages=({"role": "system", "content": prompt_or_system}, *chat_user))

    @staticmethod
    def _count(case: str, names: list[str]) -> tuple[int, int]:
        # A parallel turn of one tool may make 2..planned calls: the request decides how many it names.
        return (2 if case == "parallel" and len(set(names)) == 1 else len(names)), len(names)

    # ---- stages ---------------------------------------------------------------------------------------

    def _first_calls(self, works: list[_Work]) -> None:
        cfg, items = self.ctx.llm_config, []
        for w in self._live(works):
            if not w.plan.steps:
                continue
            names = w.planned[0]
            tools = w.tools_named(names)
            sampling = self._sampling(w, self.params.max_call_tokens, "calls", 0, temperature=cfg["temperature"])
            description = (w.seed.persona or {}).get("description") or plumbing.DEFAULT_PERSONA
            if self.params.template == "fewshot":
                text = render(self._template("plan"), examples=[s.plan_shot() for s in w.shots if s.steps],
                              persona_description=description, tools=[signature(t) for t in tools])
            else:
                text = render(self._template("plan"), persona_description=description,
                              tools=[canonical_json(t) for t in tools])
            items.append((w, self._calls_request(w, tools, self._count(w.case, names), text, sampling,
                                                 [{"role": "user", "content": "(the calls)"}])))
        for w, res in self._ask(items):
            self._take_calls(w, res, 0)

    def _take_calls(self, w: _Work, res: Any, k: int) -> None:
        if isinstance(res, RequestError):
            return self._drop(w, "calls_unparseable", error=res.reason, text=res.text[:2000], step=k)
        calls = [{"name": c["name"], "arguments": c["arguments"]} for c in res[0].parsed["calls"]]
        problem = check_turn(calls, w.offered, w.planned[k], w.case, w.steps)
        if problem is None and k > 0 and self.params.require_grounded:
            problem = check_grounded(calls, w.offered, w.request, w.steps)
        if problem is not None:
            return self._drop(w, problem[0], calls=calls, step=k, **problem[1])
        w.pending = calls

    def _results(self, works: list[_Work]) -> None:
        items, slots = [], []
        results: dict[int, list[Any]] = {}
        for w in self._live(works):
            if not w.pending:
                continue
            results[id(w)] = [None] * len(w.pending)
            for j, call in enumerate(w.pending):
                index = next(i for i in w.plan.offered if tool_name(w.catalog.tools[i]) == call["name"])
                if index in w.catalog.executable:
                    w.executors[call["name"]] = "python"
                    results[id(w)][j] = builtin_executors()[call["name"]](call["arguments"])
                    continue
                w.executors[call["name"]] = "simulated"
                shots = [r for s in w.shots for r in s.result_shots()][:4]
                sampling = self._sampling(w, self.params.max_result_tokens, "result", len(w.steps), j,
                                          canonical_json(call))
                items.append((w, simulation_request(w.catalog.tools[index], call, w.catalog.result_schemas.get(index),
                                                    sampling=sampling, template=self.params.template, shots=shots)))
                slots.append((j, w.catalog.result_schemas.get(index)))
        for (w, res), (j, schema) in zip(self._ask(items), slots):
            if w.verdict is not None:
                continue
            try:
                if isinstance(res, RequestError):
                    raise res
                results[id(w)][j] = read_result(res[0], schema)
            except RequestError as exc:
                self._drop(w, "result_unparseable", error=exc.reason, text=exc.text[:2000], call=w.pending[j])
        for w in self._live(works):
            if w.pending:
                w.steps.append((w.pending, results[id(w)]))
                w.pending = []

    def _requests(self, works: list[_Work]) -> None:
        p, items = self.params, []
        for w in self._live(works):
            description = (w.seed.persona or {}).get("description") or plumbing.DEFAULT_PERSONA
            needs = needs_line(w.case, w.planned, [tool_name(t) for t in w.offered])
            calls = calls_json(w.steps[0][0]) if w.steps else "none"
            sampling = self._sampling(w, p.max_request_tokens, "request", stop=("\n",) if p.template == "fewshot" else ())
            if p.template == "fewshot":
                prompt = render(self._template("request"), examples=[s.request_shot() for s in w.shots],
                                persona_description=description, calls=calls, needs=needs)
                items.append((w, Request(sampling=sampling, prompt=prompt)))
            else:
                system = render(self._template("request"), persona_description=description, calls=calls, needs=needs)
                items.append((w, Request(sampling=sampling, messages=(
                    {"role": "system", "content": system}, {"role": "user", "content": "(write your message)"}))))
        for w, res in self._ask(items):
            if isinstance(res, RequestError):
                self._drop(w, drop_reason(res), error=res.reason, stage="request")
                continue
            w.request = tidy(res[0].text, res[0].finish_reason == "length")
            if not w.request:
                self._drop(w, "empty_request")
            elif w.steps and p.require_grounded:
                problem = check_grounded(w.steps[0][0], w.offered, w.request, [])
                if problem is not None:
                    self._drop(w, problem[0], step=0, **problem[1])

    def _choice_check(self, works: list[_Work]) -> None:
        """Multiple choice: given only the request and every offered tool, the model must pick the planned
        tool; otherwise the request does not single it out and the sample would teach a guess."""
        items = []
        for w in self._live(works):
            if w.case != "multiple" or not self.params.choice_check:
                continue
            sampling = self._sampling(w, self.params.max_call_tokens, "choice", temperature=self.params.call_temperature)
            saved, w.steps = w.steps, []  # the check sees the request alone
            text = self._transcript(w, "Calls") if self.params.template == "fewshot" else \
                render(self._template("calls"), tools=[canonical_json(t) for t in w.offered])
            items.append((w, self._calls_request(w, w.offered, (1, 1), text, sampling, self._history(w))))
            w.steps = saved
        for w, res in self._ask(items):
            if isinstance(res, RequestError):
                self._drop(w, "calls_unparseable", error=res.reason, text=res.text[:2000], stage="choice")
                continue
            got = [c["name"] for c in res[0].parsed["calls"]]
            if got != w.planned[0]:
                self._drop(w, "wrong_tool", expected=w.planned[0], got=got, choice=res[0].parsed["calls"])

    def _later_calls(self, works: list[_Work], k: int) -> None:
        items = []
        for w in self._live(works):
            if len(w.plan.steps) <= k:
                continue
            names = w.planned[k]
            sampling = self._sampling(w, self.params.max_call_tokens, "calls", k, temperature=self.params.call_temperature)
            text = self._transcript(w, "Calls") if self.params.template == "fewshot" else \
                render(self._template("calls"), tools=[canonical_json(t) for t in w.offered])
            items.append((w, self._calls_request(w, w.tools_named(names), self._count(w.case, names), text,
                                                 sampling, self._history(w))))
        for w, res in self._ask(items):
            self._take_calls(w, res, k)

    def _answers(self, works: list[_Work]) -> None:
        p, items = self.params, []
        for w in self._live(works):
            sampling = self._sampling(w, p.max_answer_tokens, "answer", stop=("\n",) if p.template == "fewshot" else ())
            if p.template == "fewshot":
                items.append((w, Request(sampling=sampling, prompt=self._transcript(w, "Answer"))))
            else:
                system = render(self._template("answer"), tools=[signature(t) for t in w.offered])
                items.append((w, Request(sampling=sampling, messages=(
                    {"role": "system", "content": system}, *self._history(w)))))
        for w, res in self._ask(items):
            if isinstance(res, RequestError):
                self._drop(w, drop_reason(res), error=res.reason, stage="answer")
                continue
            answer = tidy(res[0].text, res[0].finish_reason == "length")
            w.answer = answer
            if not answer:
                self._drop(w, "empty_answer")

    # ---- the record -------------------------------------------------------------------------------------

    def _finish(self, w: _Work) -> Sample | None:
        messages = build_messages(w.request, w.steps, w.answer)
        problems = validate_calls([c for m in messages for c in m.tool_calls], w.offered)
        if problems:  # the last gate before the sample leaves the generator
            self._drop(w, "invalid_call", errors=problems)
            return None
        cfg, templates = self.ctx.llm_config, {r: self._template(r) for r in TEMPLATES[self.params.template]}
        provenance = plumbing.provenance(
            w.seed, self.ctx, "generate.function_calling", templates["calls"],
            content_hash({t: template_hash(t) for t in sorted(set(templates.values()))}, 12), w.usage,
            templates=templates, examples=[s.request[:40] for s in w.shots], case=w.case,
            tool_source="seed" if w.seed.meta.get("tools") else list(self.params.catalog),
            executors=w.executors,
        )
        provenance["sampling"] = {**provenance["sampling"], "call_temperature": self.params.call_temperature}
        return replace(w.seed, kind="tool_use", messages=messages, tools=w.offered, provenance=provenance,
                       meta={**w.seed.meta, "case": w.case, "planned_calls": w.planned})
