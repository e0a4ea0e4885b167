"""Few-shot tool-use examples: loaded from YAML, resolved to real tool schemas, written for each prompt.

An example names built-in tools by name or gives a full tool definition; both are normalised exactly like
catalog tools, so examples and generated samples go through one code path. `check_example` is what the
tests run over every shipped example: calls validate, and built-in results equal their executor's output.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from pipelines.tools.executors import builtin_executors
from pipelines.tools.grounding import leaves
from pipelines.tools.prompting import calls_json, result_json, signature
from pipelines.tools.schema import normalise_tool, tool_name, validate_calls

CASES = ("single", "parallel", "multiple", "multi_step", "no_tool")


@dataclass(frozen=True)
class Example:
    case: str
    person: str
    tools: tuple[dict[str, Any], ...]
    request: str
    steps: tuple[dict[str, Any], ...]  # {"calls": [{"name", "arguments"}], "results": [...]}
    answer: str

    def transcript(self) -> dict[str, Any]:
        """Values for one example of fewshot_transcript.jinja."""
        return {"tools": [signature(t) for t in self.tools], "request": self.request, "answer": self.answer,
                "steps": [{"calls": calls_json(s["calls"]), "results": result_json(s["results"])} for s in self.steps]}

    def first_calls(self) -> str:
        return calls_json(self.steps[0]["calls"]) if self.steps else "none"

    def plan_shot(self) -> dict[str, Any]:
        """Values for one example of fewshot_plan.jinja: the tools of the first step and its calls."""
        used = {c["name"] for c in self.steps[0]["calls"]}
        return {"person": self.person, "tools": [signature(t) for t in self.tools if tool_name(t) in used],
                "calls": self.first_calls()}

    def request_shot(self) -> dict[str, Any]:
        """Values for one example of fewshot_request.jinja, with the lines the generator writes."""
        planned = [[c["name"] for c in s["calls"]] for s in self.steps]
        return {"person": self.person, "calls": self.first_calls(), "request": self.request,
                "needs": needs_line(self.case, planned, [tool_name(t) for t in self.tools]),
                "mentions": mentions_line(self.steps[0]["calls"] if self.steps else [])}

    def result_shots(self) -> list[dict[str, Any]]:
        """Values for fewshot_result.jinja: every (call, result) pair of the example."""
        by_name = {tool_name(t): t for t in self.tools}
        return [{"tool": signature(by_name[c["name"]]), "call": result_json(c), "result": result_json(r)}
                for s in self.steps for c, r in zip(s["calls"], s["results"])]


def needs_line(case: str, planned: list[list[str]], offered: list[str]) -> str:
    """The 'Needs:' line that tells the request writer what the request must call for."""
    if case == "no_tool":
        return f"no tool: a question that {' or '.join(offered)} cannot answer"
    if case == "multi_step":
        return f"{planned[0][0]}, then {planned[1][0]} on its result"
    names = planned[0]
    distinct = list(dict.fromkeys(names))
    if len(names) == 1:
        return f"{names[0]}, once"
    if len(distinct) == 1:
        return f"{names[0]}, {len(names)} times with different values"
    return " and ".join(distinct) + ", in one go"


def mentions_line(calls: list[dict[str, Any]]) -> str:
    """The 'Mentions:' line: every value the calls use, which the request must state. Listing them is
    what makes a small model write a request that contains them."""
    values = list(dict.fromkeys(str(v) for c in calls for v in leaves(c["arguments"])))
    return ", ".join(values) if values else "nothing the tools need"


def _resolve_tool(ref: Any, where: str) -> dict[str, Any]:
    if isinstance(ref, str):
        executors = builtin_executors()
        if ref not in executors:
            raise ValueError(f"{where}: unknown built-in tool {ref!r}; known: {sorted(executors)}")
        return executors[ref].tool
    return normalise_tool(ref, where)


@cache
def load_examples(path: Path) -> tuple[Example, ...]:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    out = []
    for i, ex in enumerate(raw):
        where = f"{path}[{i}]"
        if ex.get("case") not in CASES:
            raise ValueError(f"{where}: case must be one of {CASES}, got {ex.get('case')!r}")
        out.append(Example(
            case=ex["case"], person=ex["person"], request=ex["request"], answer=ex["answer"],
            tools=tuple(_resolve_tool(t, f"{where}.tools[{j}]") for j, t in enumerate(ex["tools"])),
            steps=tuple({"calls": s["calls"], "results": s["results"]} for s in ex.get("steps") or []),
        ))
    return tuple(out)


def choose_examples(pool: tuple[Example, ...], case: str, targets: set[str], n: int,
                    rng: random.Random) -> list[Example]:
    """Examples of the same case first, then others to fill up to n; examples that use a target tool only
    when nothing else is left, because a small model copies such an example's values word for word."""
    fresh = [e for e in pool if not targets & {tool_name(t) for t in e.tools}]
    same = [e for e in fresh if e.case == case] or [e for e in pool if e.case == case]
    chosen = rng.sample(same, min(len(same), max(1, n - 1)))
    rest = [e for e in fresh if e.case != case and e not in chosen and (e.steps or case == "no_tool")]
    chosen += rng.sample(rest, min(len(rest), n - len(chosen)))
    rng.shuffle(chosen)
    return chosen


def check_example(ex: Example) -> list[str]:
    """Problems with one example (empty when it is right)."""
    problems = []
    executors = builtin_executors()
    for i, step in enumerate(ex.steps):
        problems += [f"step {i}: {p}" for p in validate_calls(step["calls"], list(ex.tools))]
        if len(step["calls"]) != len(step["results"]):
            problems.append(f"step {i}: {len(step['calls'])} calls but {len(step['results'])} results")
        for call, result in zip(step["calls"], step["results"]):
            tool = next((t for t in ex.tools if tool_name(t) == call["name"]), None)
            executor = executors.get(call["name"])
            if executor is not None and tool == executor.tool and executor(call["arguments"]) != result:
                problems.append(f"step {i}: {call['name']} returns {executor(call['arguments'])}, example says {result}")
    if (ex.case == "no_tool") != (not ex.steps):
        problems.append(f"case {ex.case} with {len(ex.steps)} tool steps")
    return problems
