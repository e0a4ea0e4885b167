"""Sample -> rows in TRL's conversational dataset formats, and the parquet encoding of those rows.

- SFT (language modeling):  {"messages": [...], "tools": [...]}
- preference:               {"prompt": [...], "chosen": [assistant], "rejected": [assistant], "tools": [...]}

Conversion is strict: a sample whose structure we do not understand raises ConversionError naming the sample
and the problem, because a guess here becomes a silent training bug later. A sample that is understood but
carries no preference signal (no scores, a tie) raises NoPreferenceSignal, which the exporter records as a
drop with that reason.

In parquet, tool-call arguments and the tool list are JSON strings: Arrow needs one type per column, and a
struct column would merge every function's argument names into every call (`f(a=1)` read back as
`f(a=1, city=None)`). `decode_row` turns a loaded row back into plain TRL dicts.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.core.sample import Message, Sample
from pipelines.formats.messages import from_trl_message, to_trl_message


class ConversionError(ValueError):
    def __init__(self, sample_id: str, problem: str) -> None:
        self.sample_id, self.problem = sample_id, problem
        super().__init__(f"sample {sample_id}: {problem}")


class NoPreferenceSignal(Exception):
    """The sample has candidates but nothing says which is better. `reason` is the drop reason."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


def tool_name(tool: Any) -> str:
    """The function name of a tool schema, bare (`{"name": ...}`) or OpenAI style (`{"type": "function", ...}`)."""
    if isinstance(tool, dict):
        func = tool.get("function") if tool.get("type") == "function" else tool
        if isinstance(func, dict) and isinstance(func.get("name"), str):
            return func["name"]
    raise ValueError(f"not a tool schema (needs a name): {json.dumps(tool)[:120]}")


def check_conversation(sample: Sample, messages: list[Message]) -> None:
    """Raise ConversionError unless the turns form a conversation a chat template renders faithfully."""
    sid = sample.id
    try:
        offered = {tool_name(t) for t in sample.tools}
    except ValueError as e:
        raise ConversionError(sid, str(e)) from None
    previous = None
    for i, m in enumerate(messages):
        where = f"messages[{i}] ({m.role})"
        if m.role == "system":
            if i != 0:
                raise ConversionError(sid, f"{where}: a system turn may only come first")
        elif previous in (None, "system") and m.role != "user":
            raise ConversionError(sid, f"{where}: the conversation must start with a user turn")
        elif m.role == "user" and previous == "user":
            raise ConversionError(sid, f"{where}: two user turns in a row")
        elif m.role == "tool" and previous not in ("assistant+calls", "tool"):
            raise ConversionError(sid, f"{where}: a tool result must follow an assistant turn with tool calls")
        elif m.role == "assistant":
            if previous in ("assistant", "assistant+calls"):
                raise ConversionError(sid, f"{where}: two assistant turns in a row")
            for c in m.tool_calls:
                if c.name not in offered:
                    listed = ", ".join(sorted(offered)) or "none"
                    raise ConversionError(sid, f"{where}: calls tool {c.name!r}, which the sample does not offer "
                                               f"(tools: {listed})")
            if not (m.content or m.reasoning or m.tool_calls):
                raise ConversionError(sid, f"{where}: empty assistant turn")
        previous = "assistant+calls" if m.role == "assistant" and m.tool_calls else m.role


def _normalised(messages: list[Message]) -> list[Message]:
    # An empty system turn renders to nothing and empty reasoning to no <think>: drop both, so the row says
    # exactly what the model will see.
    out = []
    for i, m in enumerate(messages):
        if i == 0 and m.role == "system" and not m.content:
            continue
        if m.reasoning == "":
            m = Message(m.role, m.content, None, m.tool_calls, m.name, m.tool_call_id)
        out.append(m)
    return out


def sft_row(sample: Sample) -> dict[str, Any]:
    """{"messages", "tools"} for a chat / reasoning / tool-use sample ending in an assistant turn."""
    if sample.kind in ("seed", "preference"):
        raise ConversionError(sample.id, f"a {sample.kind} sample has no SFT row")
    messages = _normalised(sample.messages)
    if not messages:
        raise ConversionError(sample.id, "no conversation")
    check_conversation(sample, messages)
    if messages[-1].role != "assistant":
        raise ConversionError(sample.id, f"an SFT conversation ends with an assistant turn, not {messages[-1].role}")
    return {"messages": [to_trl_message(m) for m in messages], "tools": list(sample.tools)}


def _choose(sample: Sample) -> tuple[int, int, str]:
    """(chosen, rejected, how) as candidate indices: a review choice, a ranking, or scores."""
    n = len(sample.candidates)
    pref = sample.meta.get("preference")
    if pref is not None:
        if not (isinstance(pref, dict) and set(pref) >= {"chosen", "rejected"}):
            raise ConversionError(sample.id, f"meta.preference must be {{chosen, rejected}} indices, got {pref!r}")
        chosen, rejected, how = pref["chosen"], pref["rejected"], "review"
    elif sample.meta.get("ranking") is not None:
        ranking = sample.meta["ranking"]
        if not (isinstance(ranking, list) and len(ranking) >= 2 and len(set(ranking)) == len(ranking)):
            raise ConversionError(sample.id, "meta.ranking must list distinct candidate indices, best first, "
                                             f"got {ranking!r}")
        chosen, rejected, how = ranking[0], ranking[-1], "ranking"
    else:
        scores = [c.score for c in sample.candidates]
        if all(s is None for s in scores):
            raise NoPreferenceSignal("unjudged_candidates", "candidates have no scores, ranking or review choice")
        if any(s is None for s in scores):
            raise ConversionError(sample.id, f"some candidates are scored and some are not: {scores}")
        best, worst = max(scores), min(scores)
        if best == worst:
            raise NoPreferenceSignal("tied_candidates", f"every candidate scored {best}")
        chosen, rejected, how = scores.index(best), scores.index(worst), "scores"
    for idx in (chosen, rejected):
        if not (isinstance(idx, int) and not isinstance(idx, bool) and 0 <= idx < n):
            raise ConversionError(sample.id, f"candidate index {idx!r} out of range (0..{n - 1})")
    if chosen == rejected:
        raise ConversionError(sample.id, f"chosen and rejected are the same candidate ({chosen})")
    return chosen, rejected, how


def preference_row(sample: Sample) -> dict[str, Any]:
    """{"prompt", "chosen", "rejected", "tools"} from a sample's candidates (answers to its last turn).

    The prompt is the conversation without a trailing assistant turn. Which candidate is chosen comes from,
    in order: `meta.preference` ({chosen, rejected} indices, e.g. from review), `meta.ranking` (indices best
    first), or the candidates' scores (best vs worst).
    """
    if len(sample.candidates) < 2:
        raise ConversionError(sample.id, "a preference pair needs at least two candidates, "
                                         f"got {len(sample.candidates)}")
    messages = _normalised(sample.messages)
    if messages and messages[-1].role == "assistant":
        messages = messages[:-1]
    if not messages or messages[-1].role not in ("user", "tool"):
        raise ConversionError(sample.id, "a preference prompt must end with a user or tool turn")
    check_conversation(sample, messages)
    chosen, rejected, how = _choose(sample)
    pair = []
    for idx in (chosen, rejected):
        m = sample.candidates[idx].message
        if m.role != "assistant":
            raise ConversionError(sample.id, f"candidate {idx} is a {m.role} turn, not an assistant answer")
        check_conversation(sample, [*messages, *_normalised([m])])
        pair.append(_normalised([m])[0])
    if to_trl_message(pair[0]) == to_trl_message(pair[1]):
        raise NoPreferenceSignal("identical_candidates", "chosen and rejected answers are the same")
    return {
        "prompt": [to_trl_message(m) for m in messages],
        "chosen": [to_trl_message(pair[0])],
        "rejected": [to_trl_message(pair[1])],
        "tools": list(sample.tools),
        "score_chosen": sample.candidates[chosen].score,
        "score_rejected": sample.candidates[rejected].score,
        "preference_source": how,
    }


# ---- parquet encoding -----------------------------------------------------------------------------

def encode_message(d: dict[str, Any]) -> dict[str, Any]:
    """A TRL message dict with every key of the parquet struct present and arguments as JSON text."""
    calls = None
    if d.get("tool_calls"):
        calls = [{"id": c.get("id"), "type": "function",
                  "function": {"name": c["function"]["name"],
                               "arguments": json.dumps(c["function"]["arguments"], ensure_ascii=False)}}
                 for c in d["tool_calls"]]
    return {"role": d["role"], "content": d["content"], "reasoning": d.get("reasoning"),
            "thinking": d.get("thinking"), "tool_calls": calls, "name": d.get("name"),
            "tool_call_id": d.get("tool_call_id")}


def decode_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parquet-loaded messages -> plain TRL dicts (arguments as objects, absent fields removed), reasoning
    kept under the field the export wrote it to (`thinking` for the lfm2.5 chat format)."""
    out = []
    for i, m in enumerate(messages):
        d = to_trl_message(from_trl_message(m, f"messages[{i}]"))
        if m.get("thinking") and "reasoning" in d:
            d["thinking"] = d.pop("reasoning")
        out.append(d)
    return out


def decode_tools(tools: Any) -> list[Any]:
    value = json.loads(tools) if isinstance(tools, str) else tools
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"tools must be a JSON list, got {type(value).__name__}")
    return value


def decode_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row loaded from an exported version -> the TRL row it stands for.

    >>> decode_row({"messages": [{"role": "user", "content": "hi", "reasoning": None, "tool_calls": None,
    ...             "name": None, "tool_call_id": None}], "tools": "[]"})
    {'messages': [{'role': 'user', 'content': 'hi'}], 'tools': []}
    """
    out: dict[str, Any] = {}
    for key in ("messages", "prompt", "chosen", "rejected"):
        if key in row:
            out[key] = decode_messages(row[key])
    if not out:
        raise ValueError(f"not an SFT or preference row: columns {sorted(row)}")
    out["tools"] = decode_tools(row.get("tools"))
    return out
