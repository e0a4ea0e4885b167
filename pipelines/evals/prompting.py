"""How an eval item is put to a model, and how its output is read back.

Two prompt formats, because uplift must be measured against the better baseline, not against a format the
untrained model never saw:
- `lfm2`: the LFM2 conversation format Refinery trains in (tools in the system turn between the tool-list
  tokens, calls written as Python between the tool-call tokens, reasoning in <think>), rendered by
  `pipelines.formats.lfm2` and sent as a completion prompt, so the model's own chat template plays no part.
- `json`: the prompt a user would write for an untrained chat model: the model's own chat template, tools
  as JSON in the system turn, "answer only with the calls as JSON"; for maths, the teacher's own
  "step by step, then Answer:" instruction.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pipelines.evals.suites import Item
from pipelines.formats.lfm2 import IM_END, parse_assistant, render
from pipelines.formats.pythonic_calls import ToolCallFormatError, parse_tool_calls
from pipelines.generators.reasoning import split_answer_line
from pipelines.generators.templates import render as render_template
from pipelines.llm.client import Request, Sampling
from pipelines.tools.schema import normalise_tool

FORMATS = ("lfm2", "json")
_JSON_TOOLS = ("You can call these functions:\n{tools}\n\nIf the user's request needs them, reply with only "
               "the calls, as a JSON list: [{{\"name\": \"function_name\", \"arguments\": {{...}}}}], one "
               "entry per call. If none of the functions fits the request, reply in words and call nothing.")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def request(item: Item, fmt: str, max_tokens: int, seed: int = 0) -> Request:
    """Greedy decoding: an eval measures the model, not a draw of its sampler."""
    smp = Sampling(temperature=0.0, top_p=1.0, max_tokens=max_tokens, stop=(IM_END,) if fmt == "lfm2" else (),
                   seed=seed)
    # Tools as Refinery's samples carry them (OpenAI-wrapped JSON Schema, BFCL's "dict" read as "object"),
    # so a trained model sees what it was trained on; the checker reads BFCL's own schemas.
    tools = [normalise_tool(t, item.id) for t in item.tools]
    if fmt == "lfm2":
        prompt = render([{"role": "user", "content": item.question}], tools=tools or None,
                        add_generation_prompt=True)
        return Request(smp, prompt=prompt)
    if fmt != "json":
        raise ValueError(f"unknown prompt format {fmt!r}; known: {', '.join(FORMATS)}")
    if item.tools:
        system = _JSON_TOOLS.format(tools=json.dumps(tools, ensure_ascii=False))
    else:
        system = render_template("reasoning/chat_system.jinja")
    return Request(smp, messages=({"role": "system", "content": system}, {"role": "user", "content": item.question}))


def _json_calls(text: str) -> list[dict[str, Any]] | None:
    """The first JSON value in the text that is a call or a list of calls, as [{name, arguments}]."""
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch not in "[{":
            continue
        try:
            value, _ = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            continue
        found = value if isinstance(value, list) else [value]
        calls = [{"name": c["name"], "arguments": c.get("arguments", c.get("parameters")) or {}}
                 for c in found if isinstance(c, dict) and isinstance(c.get("name"), str)]
        if calls and len(calls) == len(found) and all(isinstance(c["arguments"], dict) for c in calls):
            return calls
    return None


def read_calls(text: str, fmt: str) -> tuple[list[dict[str, Any]], str | None]:
    """(calls, parse problem or None) of a model's output. No call at all is ([], None)."""
    if fmt == "json":
        calls = _json_calls(text)
        return (calls, None) if calls is not None else ([], None)
    try:
        message = parse_assistant(text.strip(), bare_calls=True)
    except (ToolCallFormatError, ValueError) as exc:
        return [], f"unparseable call: {exc}"
    calls = message.tool_calls or _bare_calls(text)
    return [{"name": c.name, "arguments": c.arguments} for c in calls], None


def _bare_calls(text: str) -> list:
    """BFCL's decoding of a prompted model's output: strip backticks and blank space, add the list brackets
    when missing, parse as Python calls. An output that is only `f(a=1)` (no tool-call tokens) counts as
    that call, as BFCL counts it; prose does not parse and stays no call."""
    s = text.strip("`\n ")
    if "(" not in s:
        return []
    s = s if s.startswith("[") else "[" + s
    s = s if s.endswith("]") else s + "]"
    try:
        return parse_tool_calls(s)
    except ToolCallFormatError:
        return []


def read_answer(text: str, fmt: str) -> str:
    """The final answer of a maths output: the content after </think> (lfm2), the last "Answer:" line,
    else the last number in the text."""
    if fmt == "lfm2":
        try:
            text = parse_assistant(text.strip()).content or text
        except (ToolCallFormatError, ValueError):
            pass
    split = split_answer_line(text)
    if split is not None:
        return split[1]
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else text.strip()
