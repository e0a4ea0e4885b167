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
   in it (`pipelines.tools.grounding`). When no candidate does, the one that misses fewest values is kept
   and the first calls are decoded again from it (`reanchor`), grounded in it, and run again;
4. choice check (multiple): the model, given the request and all offered tools, must pick the right tool;
5. later calls (multi_step): decoded from the conversation so far, grounded in the request and results;
6. answer: the assistant replies from the results (or directly, for no_tool); best of `answer_candidates`.

A sample that fails a check is dropped with a Verdict naming the reason: calls_unparseable,
result_unparseable, tool_error, empty_request, empty_answer, copied_example (a request or answer repeats a
few-shot example), no_plan (the seed's tools cannot make the case), ungrounded_answer (the answer states
no value the tools returned), or a reason of `pipelines.tools.checks` (invalid_call, wrong_tool,
degenerate_call, duplicate_calls, repeated_call, ungrounded_argument). Before a sample leaves, every call
is validated against its tool schema once more. Prompts: `fewshot` (base models such as the embedded
Gemma 3 270M) or `chat` (instruct models). Request seeds come from the sample's content, never its position.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pipelines.core.registry import register
from pipelines.core.sample import Message, Sample, Verdict, canonical_json, content_hash
from pipelines.core.step import Params, Step
from pipelines.generators import calls as plumbing
from pipelines.generators import turn_checks, user_voice
from pipelines.generators.calls import Usage, batches, run_batch, tidy
from pipelines.generators.templates import PROMPTS, derive_seed, files_in, template_hash
from pipelines.generators.turn_checks import turn_problem, voice_problem
from pipelines.llm.client import Request, Sampling
from pipelines.llm.errors import RequestError, drop_reason
from pipelines.llm.prompt_style import PromptStyled, Template, template_field
from pipelines.tools.catalog import Catalog, catalog_from_tools, load_catalog, validate_sources
from pipelines.tools.chains import chain_ask
from pipelines.tools.checks import Steps, build_messages, check_grounded, check_turn
from pipelines.tools.executors import builtin_executors, served_values
from pipelines.tools.fewshot import CASES, Example, choose_examples, load_examples, mentions_line, needs_line
from pipelines.tools.grounding import answer_uses_results, context_numbers, invented_numbers, number_in
from pipelines.tools.prompting import calls_json
from pipelines.tools.requests import FOLDER, Conversation, Prompts
from pipelines.tools.schema import tool_name, tool_parameters, validate_calls
from pipelines.tools.selection import Plan, make_plan
from pipelines.tools.simulated import read_result, simulation_request

_TOOLS_DIR = Path(__file__).resolve().parents[1] / "tools"
_RESULTS_ECHO = re.compile(r'^\s*(tool results?:|\[?\s*\{\s*")', re.IGNORECASE)
Case = Literal["single", "parallel", "multiple", "multi_step", "no_tool"]
Check = Literal["grounded", "choice", "distinct", "tool_errors"]
CHECKS = ("grounded", "choice", "distinct", "tool_errors")


# After the answer, the user follows up, asks what something meant or doubts a point (user_voice.MOVES);
# a topic shift would leave the tools behind.
_FOLLOW_UP_MOVES = ("follow_up", "clarify", "push_back")
_SPARE_CALLS = 2
# Chat user messages written by user_voice come after a "situation" scratchpad (not kept).
_SCRATCHPAD_TOKENS = 128
# First-call failures that say nothing about the sample's plan, only about the values sampled this time.
_RETRYABLE = {"calls_unparseable", "tool_error", "degenerate_call", "duplicate_calls"}


def _plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


def _best_of(res: list[Any], problem_of: Any) -> tuple[tuple[int, str] | None, list[tuple[int, str, Any]]]:
    """Best of n: (index, text) of the first candidate, in seed order, with no problem (None if none), and
    (index, text, problem) for each candidate rejected before it."""
    rejected = []
    for i, out in enumerate(res):
        if isinstance(out.parsed, dict):  # a chat request, asked for as JSON
            text = next(iter(user_voice.messages(out)), "")
        else:
            text = tidy(out.text, out.finish_reason == "length")
        problem = problem_of(text)
        if problem is None:
            return (i, text), rejected
        rejected.append((i, text, problem))
    return None, rejected


def _note_repeated_enum(w: _Work, call: dict[str, Any]) -> None:
    """After a degenerate call such as get_exchange_rate(base="USD", quote="USD"), the retry may not give the
    later parameter that value again. A small model's prior for the first enum value is so strong that a
    new seed alone mostly writes the same pair (measured: 8 of 24 seeds still degenerate after 3 tries)."""
    tool = next((t for t in w.offered if tool_name(t) == call["name"]), None)
    if tool is None:
        return
    seen: dict[str, str] = {}
    for param, schema in tool_parameters(tool).get("properties", {}).items():
        value = call["arguments"].get(param)
        if not isinstance(value, str) or "enum" not in schema:
            continue
        if value in seen.values():
            w.avoid.setdefault(f"{call['name']}.{param}", set()).add(value)
        seen[param] = value


def _note_duplicate(w: _Work, calls: list[dict[str, Any]]) -> None:
    """After same-tool calls that did the same thing (get_weather("Nairobi") twice, from a Nairobi persona),
    the retry may not decode the shared value again. Measured before this: a new seed, hotter, or the
    prompt naming the call already made, and the 0.5B teacher wrote Nairobi again 4 times of 4."""
    for a, b in zip(calls, calls[1:]):
        if a["name"] != b["name"]:
            continue
        for param, value in a["arguments"].items():
            if isinstance(value, str) and b["arguments"].get(param) == value:
                w.avoid.setdefault(f"{a['name']}.{param}", set()).add(value)


def _with_properties(tool: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    return {**tool, "function": {**tool["function"], "parameters": {**tool_parameters(tool), "properties": props}}}


def _served(tool: dict[str, Any]) -> dict[str, Any]:
    """A copy of a built-in tool for decoding planned calls only, whose free strings with a fixed world
    (get_weather's cities) become enums of it: the plan is the generator's choice, and a planned call the
    tool cannot serve only costs a retry (3 of 40 seeds dropped as tool_error after 3 tries, on "Kisumu",
    "Andalusia", "Western Australia"). Shown in the prompt, the 110 names would cost ~400 tokens each time."""
    served = served_values(tool_name(tool))
    props = tool_parameters(tool).get("properties", {})
    if not served or any("enum" in props.get(p, {}) for p in served):
        return tool
    new_props = {p: ({**s, "enum": served[p]} if p in served else s) for p, s in props.items()}
    return _with_properties(tool, new_props)


def _avoiding(tool: dict[str, Any], avoid: dict[str, set[str]]) -> dict[str, Any]:
    """A copy of `tool` for decoding only, whose enum parameters named in `avoid` lose those values."""
    name = tool_name(tool)
    props = tool_parameters(tool).get("properties", {})
    cut = {p: avoid[f"{name}.{p}"] for p, s in props.items() if f"{name}.{p}" in avoid and "enum" in s}
    if not cut:
        return tool
    new_props = {p: ({**s, "enum": [v for v in s["enum"] if v not in cut[p]] or s["enum"]} if p in cut else s)
                 for p, s in props.items()}
    return _with_properties(tool, new_props)


class FunctionCallingParams(Params):
    catalog: list[str] = Field(
        default_factory=lambda: ["builtin"],
        description="tool sources: builtin, bfcl, bfcl:<category>, or .json/.jsonl files; seeds that carry "
                    "meta.tools (e.g. from tools.generate) use those instead")
    cases: list[Case] = Field(default_factory=lambda: list(CASES), description="cases drawn from, per seed")
    case_weights: dict[Case, float] = Field(
        default_factory=dict, description="relative weight of a case when drawing (1 when unnamed), e.g. "
        "{no_tool: 0.25}: no-tool samples survive the checks most often, so a uniform draw skews the kept "
        "data toward answers without calls")
    template: Template = template_field()
    n_examples: int = Field(3, ge=1, le=6, description="few-shot examples per prompt")
    n_offered: int = Field(3, ge=2, le=8, description="tools offered in multiple-choice and no-tool samples")
    max_parallel: int = Field(2, ge=2, le=6, description="most calls in one parallel turn (a small model rarely "
                                                          "writes a request that names three values)")
    call_temperature: float = Field(0.3, ge=0.0, le=2.0,
                                    description="temperature for calls decoded from the conversation")
    checks: list[Check] = Field(
        default_factory=lambda: list(CHECKS),
        description="semantic checks that drop a sample (schema validity is always checked): grounded (argument "
                    "values appear in the request or earlier results, and the answer states a result), choice (multiple: the model, shown the "
                    "request and all tools, picks the planned one; one more request), distinct (no degenerate, "
                    "duplicate or repeated calls), tool_errors (no tool answered {\"error\": ...})")
    call_attempts: int = Field(3, ge=1, le=5, description="tries at the first calls when they are unparseable, "
                               "degenerate, duplicated or answered by a tool error (a new seed each time)")
    request_candidates: int = Field(3, ge=1, le=8, description="requests sampled per sample; the first that "
                                                                "passes the checks is kept (best of n)")
    reanchor: bool = Field(True, description="when no request candidate states every planned value, keep the "
                           "candidate that misses fewest and decode the first calls again from it (the request "
                           "leads, as in real use); they must be grounded in it and pass every check")
    answer_candidates: int = Field(4, ge=1, le=8, description="final answers sampled per sample; the first "
                                   "that passes the checks is kept (best of n)")
    follow_up: float = Field(0.5, ge=0.0, le=1.0, description="chat: share of samples (drawn per sample) that "
                             "go on after the answer: the user's next message (a follow-up, clarification or "
                             "push-back) and the assistant's reply. A follow-up that fails a turn check is left "
                             "off, and the sample keeps its one exchange (provenance.follow_up says why)")
    batch_size: int = Field(16, ge=1, description="samples whose requests go to the model together")
    max_request_tokens: int = Field(96, ge=8, description="a chat request comes wrapped in JSON, and one cut "
                                    "short is invalid JSON: at 64 the 1.5B teacher lost 4 of 20 samples so")
    max_call_tokens: int = Field(192, ge=16)
    max_result_tokens: int = Field(128, ge=16)
    max_answer_tokens: int = Field(96, ge=8)
    max_follow_up_tokens: int = Field(160, ge=8, description="the assistant's reply to the follow-up")

    @field_validator("cases")
    @classmethod
    def _cases(cls, cases: list[str]) -> list[str]:
        if not cases or len(set(cases)) != len(cases):
            raise ValueError(f"name each case at most once, at least one of {list(CASES)}")
        return cases

    @model_validator(mode="after")
    def _weights(self) -> FunctionCallingParams:
        unknown = set(self.case_weights) - set(self.cases)
        if unknown:
            raise ValueError(f"case_weights names cases not in cases: {sorted(unknown)}")
        if any(w <= 0 for w in self.case_weights.values()):
            raise ValueError("case_weights must be > 0 (leave a case out of `cases` to never draw it)")
        return self

    @field_validator("checks")
    @classmethod
    def _checks(cls, checks: list[str]) -> list[str]:
        if len(set(checks)) != len(checks):
            raise ValueError("name each check at most once")
        return checks

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
    retried: list[str] = field(default_factory=list)  # why earlier first-call attempts were rejected
    picked: dict[str, int] = field(default_factory=dict)  # stage -> index of the candidate kept (best of n)
    avoid: dict[str, set[str]] = field(default_factory=dict)  # "tool.param" -> enum values not to decode again
    from_request: bool = False  # the first calls are read off the request (reanchored), not planned before it
    reanchored: dict[str, Any] | None = None  # the planned first calls a request failed to state, and why
    follow_up: dict[str, Any] = field(default_factory=dict)  # move, user, reply, or left_off: why not
    then_values: list[str] = field(default_factory=list)  # multi_step: values the request adds for step 2
    instructions: str = ""  # the request prompt's instruction words, which a request must not copy

    @property
    def offered(self) -> list[dict[str, Any]]:
        return [self.catalog.tools[i] for i in self.plan.offered]

    @property
    def planned(self) -> list[list[str]]:
        return self.plan.step_names(self.catalog)

    def tools_named(self, names: list[str]) -> list[dict[str, Any]]:
        return [t for t in self.offered if tool_name(t) in names]

    def view(self) -> Conversation:
        persona = (self.seed.persona or {}).get("description") or plumbing.DEFAULT_PERSONA
        return Conversation(persona, self.shots, self.offered, self.request, self.steps)

    def trace(self) -> dict[str, Any]:
        return {"case": self.case, "tools": [tool_name(t) for t in self.offered], "planned": self.planned,
                "request": self.request, "steps": [{"calls": c, "results": r} for c, r in self.steps],
                "retried": self.retried, **({"reanchored": self.reanchored} if self.reanchored else {})}


@register("generate.function_calling")
class FunctionCalling(PromptStyled, Step):
    kind = "map"
    uses_llm = True
    Params = FunctionCallingParams

    @classmethod
    def fingerprint_files(cls) -> list[Path]:
        # Plans, schemas, executors and checks live in pipelines/tools: a change there changes the output.
        return [*files_in(FOLDER), plumbing.HERE, Path(turn_checks.__file__), *user_voice.fingerprint_files(),
                *sorted(_TOOLS_DIR.glob("*.py")), *sorted((_TOOLS_DIR / "data").iterdir())]

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        for batch in batches(samples, self.params.batch_size):
            works = [self._start(s) for s in batch]
            self._first_round(works)
            self._requests(works)
            self._reanchor(works)
            self._choice_check(works)
            for k in range(1, max(len(w.plan.steps) for w in works) or 1):
                self._later_calls(works, k)
                self._results(works)
            self._answers(works)
            self._follow_ups(works)
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
        if seed.meta.get("case"):
            case = seed.meta["case"]
        elif p.case_weights:
            case = rng.choices(p.cases, weights=[p.case_weights.get(c, 1.0) for c in p.cases])[0]
        else:
            case = rng.choice(p.cases)
        if case not in CASES:
            raise ValueError(f"seed {seed.id}: meta.case must be one of {CASES}, got {case!r}")
        try:
            plan = make_plan(case, catalog, rng, seed.persona, p.n_offered, p.max_parallel)
        except ValueError as exc:  # e.g. multiple choice from a seed that carries a single tool
            w = _Work(seed, case, catalog, Plan(case, (), ()), [])
            self._drop(w, "no_plan", error=str(exc))
            return w
        targets = {n for step in plan.step_names(catalog) for n in step}
        return _Work(seed, case, catalog, plan, choose_examples(self._examples(), case, targets, p.n_examples, rng))

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

    @property
    def _prompts(self) -> Prompts:
        return Prompts(self.style)

    def _live(self, works: list[_Work]) -> list[_Work]:
        return [w for w in works if w.verdict is None]

    # ---- stages ---------------------------------------------------------------------------------------

    def _first_round(self, works: list[_Work]) -> None:
        """The first calls and their results. The calls come before the request, so nothing yet ties their
        values down: a small model picks a city the weather tool does not know or converts USD to USD. Such a
        sample is not wrong yet, only unlucky, so its first calls are asked again with a new seed
        (`call_attempts`) before it is dropped."""
        todo = works
        for attempt in range(self.params.call_attempts):
            self._first_calls(todo, attempt)
            self._results(todo)
            todo = [w for w in todo if w.verdict is not None and w.verdict.reason in _RETRYABLE and not w.steps]
            if attempt + 1 == self.params.call_attempts:
                break
            for w in todo:
                w.retried.append(w.verdict.reason)
                if w.verdict.reason == "degenerate_call" and "call" in w.verdict.details:
                    _note_repeated_enum(w, w.verdict.details["call"])
                if w.verdict.reason == "duplicate_calls":
                    _note_duplicate(w, w.verdict.details.get("calls", []))
                w.verdict, w.pending = None, []

    def _first_calls(self, works: list[_Work], attempt: int = 0) -> None:
        cfg, items = self.ctx.llm_config, []
        for w in self._live(works):
            if not w.plan.steps:
                continue
            names = w.planned[0]
            # Same-tool parallel calls come as n one-call completions (seeds s, s+1, ...), sampled hotter than
            # the recipe: asked for a list, a small model repeats its first call instead of varying the values.
            same_tool = w.case == "parallel" and len(set(names)) == 1
            temperature = max(cfg["temperature"], 1.0) if same_tool else cfg["temperature"]
            retry = ("retry", attempt) if attempt else ()  # attempt 0 keeps the seed (and cache entry) it had
            sampling = self._sampling(w, self.params.max_call_tokens, "calls", 0, *retry, temperature=temperature)
            count = (1, 1) if same_tool else (len(names), len(names))
            tools = [_avoiding(next(t for t in w.offered if tool_name(t) == n), w.avoid) for n in dict.fromkeys(names)]
            decode = [_avoiding(self._served(w, t), w.avoid) for t in tools]
            # Same-tool calls: two spare completions, since even hot the 0.5B teacher often picks one city twice.
            n = len(names) + _SPARE_CALLS if same_tool else 1
            items.append((w, self._prompts.plan(w.view(), tools, count, sampling, n=n, in_order=len(tools) > 1,
                                                decode=decode)))
        for w, res in self._ask(items):
            self._take_calls(w, res, 0)

    @staticmethod
    def _served(w: _Work, tool: dict[str, Any]) -> dict[str, Any]:
        index = next(i for i in w.plan.offered if tool_name(w.catalog.tools[i]) == tool_name(tool))
        return _served(tool) if index in w.catalog.executable else tool

    def _take_calls(self, w: _Work, res: Any, k: int, grounded: bool = False) -> None:
        """grounded: the calls must be grounded in the request (always so after the first turn)."""
        if isinstance(res, RequestError):
            return self._drop(w, "calls_unparseable", error=res.reason, text=res.text[:2000], step=k)
        calls = [{"name": c["name"], "arguments": c["arguments"]} for out in res for c in out.parsed["calls"]]
        if k == 0 and not grounded and w.case == "parallel" and len(calls) > len(w.planned[0]):
            # Spare same-tool completions: the first ones with distinct arguments, as many as planned.
            firsts: dict[str, dict[str, Any]] = {}
            for c in calls:
                firsts.setdefault(canonical_json(c["arguments"]), c)
            distinct = list(firsts.values())
            calls = (distinct if len(distinct) >= len(w.planned[0]) else calls)[:len(w.planned[0])]
        problem = check_turn(calls, w.offered, w.planned[k], w.case, w.steps, "distinct" in self.params.checks)
        if problem is None and (k > 0 or grounded) and "grounded" in self.params.checks:
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
                                                    sampling=sampling, template=self.style, shots=shots)))
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
            if not w.pending:
                continue
            errors = [r for r in results[id(w)] if "error" in r]
            if errors and "tool_errors" in self.params.checks:
                self._drop(w, "tool_error", calls=w.pending, results=results[id(w)])
                continue
            keys = [canonical_json(r) for r in results[id(w)]]
            if len(set(keys)) < len(keys) and "distinct" in self.params.checks:
                # "Sao Paulo" and "Sao Paulo, Brazil": different text, the same call in effect.
                self._drop(w, "duplicate_calls", calls=w.pending, results=results[id(w)])
                continue
            w.steps.append((w.pending, results[id(w)]))
            w.pending = []

    def _requests(self, works: list[_Work]) -> None:
        p, items = self.params, []
        for w in self._live(works):
            first = w.steps[0][0] if w.steps else []
            needs = needs_line(w.case, w.planned, [tool_name(t) for t in w.offered])
            if w.case == "no_tool" and self.style == "chat":
                # Told which tools not to need, the 0.5B teacher writes their descriptions as the message.
                # So the persona asks for advice about its own goal instead: a judgement no offered tool
                # (weather, conversions, arithmetic, lookups) computes. Nothing here proves that no tool fits;
                # the request is user_voice's opening, checked like every request.
                sampling = self._sampling(w, p.max_request_tokens + _SCRATCHPAD_TOKENS, "request")
                items.append((w, user_voice.opening_for(w.seed, sampling, p.request_candidates, ask="advice")))
                continue
            mentions = mentions_line(first)
            if w.case == "multi_step" and self.style == "chat" and first:
                # The request says what comes after the first call, with the values that step adds
                # (pipelines.tools.chains says why); a chain it has no words for keeps the plain needs line.
                rng = random.Random(derive_seed(self.ctx.llm_config["seed"], w.seed.id, "chain"))
                ask = chain_ask(first[0], w.planned[1][0], rng)
                if ask is not None:
                    then, w.then_values = ask
                    # The chain's words are how a user says the second step ("split equally between 5
                    # people"): a request that repeats them is right, so only the needs line is not to copy.
                    w.instructions = needs
                    needs = f"{first[0]['name'].replace('_', ' ')}, {then}"
                    stated = [mentions] if any(c["arguments"] for c in first) else []
                    mentions = ", ".join([*stated, *w.then_values]) or mentions
            w.instructions = (w.instructions or needs) if self.style == "chat" else ""
            sampling = self._sampling(w, p.max_request_tokens, "request", stop=("\n",) if self.style == "fewshot" else ())
            items.append((w, self._prompts.request(w.view(), calls_json(first) if first else "none", needs,
                                                   mentions, sampling, p.request_candidates)))
        for w, res in self._ask(items):
            if isinstance(res, RequestError):
                self._drop(w, drop_reason(res), error=res.reason, stage="request")
                continue
            kept, rejected = _best_of(res, lambda text: self._request_problem(w, text))
            if kept is not None:
                w.picked["request"], w.request = kept
            else:
                failures: dict[str, Any] = {}
                for i, text, (reason, details) in rejected:
                    failures.setdefault(reason, []).append({"request": text, "index": i, **details})
                ungrounded = failures.get("ungrounded_argument", [])
                if self.params.reanchor and ungrounded:
                    # The request leads from here: the first calls are decoded again from it (`_reanchor`).
                    best = min(ungrounded, key=lambda c: len(c["missing"]))
                    w.request, w.picked["request"] = best["request"], best["index"]
                    w.reanchored = {"planned": w.steps[0][0], "missing": best["missing"]}
                    w.from_request, w.steps = True, []
                    continue
                reason = next(iter(failures))  # the first candidate's problem
                self._drop(w, reason, step=0, candidates=failures)

    def _reanchor(self, works: list[_Work]) -> None:
        """First calls decoded from a request that did not state the planned ones. A 270M base model often
        writes a fine request around other values ("Convert 1000 mm to km" for a plan of 25 mm to km);
        copying values out of a request above it is the easy direction for it, and the direction of real
        use. The new calls are checked like later calls (schema, plan, distinct, grounded in the request)
        and run again; a sample whose new calls fail is dropped with that reason."""
        todo = [w for w in self._live(works) if w.from_request]
        items = []
        for w in todo:
            names = w.planned[0]
            sampling = self._sampling(w, self.params.max_call_tokens, "reanchor", temperature=self.params.call_temperature)
            items.append((w, self._prompts.calls(w.view(), w.tools_named(names), (len(names), len(names)), sampling)))
        for w, res in self._ask(items):
            self._take_calls(w, res, 0, grounded=True)
        self._results(todo)

    def _request_problem(self, w: _Work, text: str) -> tuple[str, dict[str, Any]] | None:
        if not text:
            return "empty_request", {}
        if _plain(text) in {_plain(e.request) for e in self._examples()}:
            return "copied_example", {}
        if (voice := voice_problem("user", text, persona=plumbing.persona_traits(w.seed))) is not None:
            return voice, {}
        if w.instructions and turn_checks.shares_run(text, w.instructions.replace("_", " "), 4):
            return "copied_instructions", {}  # "Get weather, 2 times with different values. Jakarta, Nairobi."
        if self.style == "chat" and not turn_checks.asks_something(text):
            # "1000 EUR is approximately 1,000 BRL." states; it asks for nothing. (Chat only, like the
            # instruction-copy check: these are the 0.5B teacher's failures; base-model requests follow
            # the few-shot examples' shapes and are checked by grounding.)
            return "not_a_request", {}
        if self.style == "chat" and w.case == "no_tool" and plumbing.off_goal(text, plumbing.persona_goal(w.seed)):
            return "off_goal", {}  # a no-tool request was asked to be advice on the persona's goal
        if any(tool_name(t) in text for t in w.offered if "_" in tool_name(t)):
            return "request_names_tool", {}  # users ask for what they need, not for get_weather
        if w.then_values and any(not number_in(float(v), context_numbers(text)) for v in w.then_values):
            return "request_misses_value", {"values": w.then_values}  # the second call would have to invent it
        if w.steps and "grounded" in self.params.checks:
            return check_grounded(w.steps[0][0], w.offered, text, [])
        return None

    def _examples(self) -> tuple[Example, ...]:
        return load_examples(PROMPTS / FOLDER / "examples.yaml")

    def _choice_check(self, works: list[_Work]) -> None:
        """Multiple choice: given only the request and every offered tool, the model must pick the planned
        tool; otherwise the request does not single it out and the sample would teach a guess."""
        items = []
        for w in self._live(works):
            if w.case != "multiple" or "choice" not in self.params.checks:
                continue
            sampling = self._sampling(w, self.params.max_call_tokens, "choice", temperature=self.params.call_temperature)
            view = replace(w.view(), steps=())  # the check sees the request alone
            items.append((w, self._prompts.calls(view, w.offered, (1, 1), sampling)))
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
            items.append((w, self._prompts.calls(w.view(), w.tools_named(names), (len(names), len(names)), sampling)))
        for w, res in self._ask(items):
            self._take_calls(w, res, k)

    def _answers(self, works: list[_Work]) -> None:
        p, items = self.params, []
        for w in self._live(works):
            sampling = self._sampling(w, p.max_answer_tokens, "answer", stop=("\n",) if self.style == "fewshot" else ())
            items.append((w, self._prompts.answer(w.view(), sampling, p.answer_candidates)))
        for w, res in self._ask(items):
            if isinstance(res, RequestError):
                self._drop(w, drop_reason(res), error=res.reason, stage="answer")
                continue
            kept, rejected = _best_of(res, lambda text: self._answer_problem(w, text))
            if kept is not None:
                w.picked["answer"], w.answer = kept
            else:
                failures: dict[str, list[str]] = {}
                for _, text, problem in rejected:
                    failures.setdefault(problem, []).append(text)
                reason = next(iter(failures))  # the first candidate's problem
                self._drop(w, reason, answer=failures[reason][0], candidates=failures)

    def _answer_problem(self, w: _Work, text: str) -> str | None:
        if not text:
            return "empty_answer"
        if _plain(text) in {_plain(e.answer) for e in self._examples()}:
            return "copied_example"
        if _RESULTS_ECHO.search(text):
            return "echoed_tool_results"  # the results pasted back ("Tool results: [...]") instead of an answer
        if (voice := voice_problem("assistant", text, asked=w.request)) is not None:
            return voice
        if w.steps and "grounded" in self.params.checks:
            # A multi-step answer reports where the chain ended: the last round's results.
            results = w.steps[-1][1] if w.case == "multi_step" else [r for _, rs in w.steps for r in rs]
            if not answer_uses_results(text, results, asked=w.request):
                return "ungrounded_answer"
            if invented_numbers(text, self._said(w)):
                return "invented_number"
        return None

    @staticmethod
    def _said(w: _Work, *more: str) -> str:
        """Everything the conversation states so far: the request, every call and result, and `more`."""
        return "\n".join([w.request, *(canonical_json(c) + canonical_json(r) for cs, rs in w.steps
                                        for c, r in zip(cs, rs)), *more])

    def _follow_ups(self, works: list[_Work]) -> None:
        """The conversation goes on after the answer (chat only): the user's next message, written by
        user_voice as three candidates (the first that passes the user-turn checks is kept), then the
        assistant's reply with the tools and results in view (best of `answer_candidates`)."""
        p, seed = self.params, self.ctx.llm_config["seed"]
        if self.style != "chat" or p.follow_up == 0:
            return
        todo = [w for w in self._live(works)
                if random.Random(derive_seed(seed, w.seed.id, "follow_up")).random() < p.follow_up]
        items = []
        for w in todo:
            move = _FOLLOW_UP_MOVES[derive_seed(seed, w.seed.id, "follow_up_move") % len(_FOLLOW_UP_MOVES)]
            w.follow_up = {"move": move}
            sampling = self._sampling(w, p.max_request_tokens + _SCRATCHPAD_TOKENS, "follow_up", "user")
            transcript = [{"role": "user", "content": w.request}, {"role": "assistant", "content": w.answer}]
            items.append((w, user_voice.follow_up(w.view().persona, transcript, move, sampling)))
        for w, res in self._ask(items):
            if isinstance(res, RequestError):
                w.follow_up["left_off"] = drop_reason(res)
                continue
            found = [(text, self._follow_up_problem(w, "user", text)) for text in user_voice.messages(res[0])]
            text = next((t for t, problem in found if problem is None), None)
            if text is None:
                w.follow_up["left_off"] = found[0][1] if found else "empty_user_turn"
            else:
                w.follow_up["user"] = text
        items = []
        for w in todo:
            if "user" in w.follow_up:
                sampling = self._sampling(w, p.max_follow_up_tokens, "follow_up", "assistant")
                items.append((w, self._prompts.follow_up(w.view(), w.answer, w.follow_up["user"], sampling,
                                                         p.answer_candidates)))
        for w, res in self._ask(items):
            if isinstance(res, RequestError):
                w.follow_up["left_off"] = drop_reason(res)
                continue
            kept, rejected = _best_of(res, lambda text: self._follow_up_problem(w, "assistant", text))
            if kept is None:
                w.follow_up["left_off"] = rejected[0][2]
            else:
                w.follow_up["reply"] = kept[1]

    def _follow_up_problem(self, w: _Work, role: str, text: str) -> str | None:
        if not text:
            return f"empty_{role}_turn"
        turns = [{"user": w.request, "assistant": w.answer}]
        if role == "assistant":
            if _RESULTS_ECHO.search(text):
                return "echoed_tool_results"
            if "grounded" in self.params.checks and invented_numbers(text, self._said(w, w.answer, w.follow_up["user"])):
                return "invented_number"
            turns.append({"user": w.follow_up["user"], "assistant": None})
        occupation = (w.seed.persona or {}).get("occupation")
        return turn_problem(role, text, turns, [], 0.8, occupation, persona=plumbing.persona_traits(w.seed))

    # ---- the record -------------------------------------------------------------------------------------

    def _finish(self, w: _Work) -> Sample | None:
        messages = build_messages(w.request, w.steps, w.answer)
        if "reply" in w.follow_up:
            messages += [Message("user", w.follow_up["user"]), Message("assistant", w.follow_up["reply"])]
        problems = validate_calls([c for m in messages for c in m.tool_calls], w.offered)
        if problems:  # the last gate before the sample leaves the generator
            self._drop(w, "invalid_call", errors=problems)
            return None
        templates = self._prompts.templates()
        provenance = plumbing.provenance(
            w.seed, self.ctx, "generate.function_calling", templates["calls"],
            content_hash({t: template_hash(t) for t in sorted(set(templates.values()))}, 12), w.usage,
            templates=templates, examples=[s.request[:40] for s in w.shots], case=w.case,
            tool_source="seed" if w.seed.meta.get("tools") else list(self.params.catalog),
            executors=w.executors, call_retries=w.retried,
            first_calls="from_request" if w.from_request else "planned", candidates_picked=w.picked,
            **({"follow_up": {k: v for k, v in w.follow_up.items() if k in ("move", "left_off")}}
               if w.follow_up else {}),
        )
        provenance["sampling"] = {**provenance["sampling"], "call_temperature": self.params.call_temperature}
        return replace(w.seed, kind="tool_use", messages=messages, tools=w.offered, provenance=provenance,
                       meta={**w.seed.meta, "case": w.case, "planned_calls": w.planned})
