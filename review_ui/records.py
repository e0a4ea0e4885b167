"""Sample -> Argilla record payload (the JSON of the bulk upsert API), per kind.

The record's external id is the sample id, so pushing the same sample twice updates one record. The whole
sample rides along as hidden extra metadata (`_sample`: annotators cannot read extra metadata), so a pull
rebuilds the exact sample without needing the run that made it. Metadata is always sent in full: Argilla
wipes a record's metadata when it is re-logged without it.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.core.sample import Message, Sample, ToolCall, canonical_json
from review_ui.layout import (ACCEPT, CORRECTION, EMBEDDING, QUALITY, REJECT, SAMPLE_KEY, VERDICT, Layout)

MAX_MESSAGE_CHARS = 20000  # argilla's limit for one chat message


def render_call(call: ToolCall) -> str:
    """`get_weather(city="Paris", days=3)`: the Python-style form LFM2 itself writes."""
    args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in call.arguments.items())
    return f"{call.name}({args})"


def _clip(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    cut = len(text) - (MAX_MESSAGE_CHARS - 100)
    return text[: MAX_MESSAGE_CHARS - 100] + f"\n\n[... {cut} more characters, kept in the sample]"


def chat_message(m: Message) -> dict[str, str]:
    parts = []
    if m.role == "tool":
        parts.append(f"**result of `{m.name or 'tool'}`**")
    if m.content:
        parts.append(m.content)
    if m.tool_calls:
        parts.append("**calls:**\n```python\n" + "\n".join(render_call(c) for c in m.tool_calls) + "\n```")
    return {"role": m.role, "content": _clip("\n\n".join(parts) or "(empty)")}


def tools_markdown(tools: list[dict[str, Any]]) -> str:
    out = []
    for t in tools:
        fn = t.get("function", t) if isinstance(t, dict) else {}
        params = fn.get("parameters") or {}
        props = params.get("properties") or {}
        required = set(params.get("required") or [])
        out.append(f"### `{fn.get('name', '?')}`\n\n{fn.get('description', '')}".rstrip())
        if props:
            rows = ["| parameter | type | required | description |", "|---|---|---|---|"]
            for name, p in props.items():
                typ = p.get("type", "") if isinstance(p, dict) else ""
                if isinstance(p, dict) and p.get("enum"):
                    typ = f"{typ} ({' / '.join(map(str, p['enum']))})"
                desc = (p.get("description", "") if isinstance(p, dict) else "").replace("|", "\\|").replace("\n", " ")
                rows.append(f"| `{name}` | {typ} | {'yes' if name in required else ''} | {desc} |")
            out.append("\n".join(rows))
    return "\n\n".join(out)


def last_assistant_index(sample: Sample) -> int | None:
    for i in range(len(sample.messages) - 1, -1, -1):
        if sample.messages[i].role == "assistant":
            return i
    return None


def answer_text(m: Message, kind: str) -> str:
    """What `corrected_answer` is pre-filled with: the answer text, or for a tool-calling turn its calls as
    JSON (name + arguments), which the pull parses back."""
    if kind == "tool_use" and m.tool_calls:
        return json.dumps([{"name": c.name, "arguments": c.arguments} for c in m.tool_calls], indent=2,
                          ensure_ascii=False)
    return m.content


def preference_parts(sample: Sample) -> tuple[list[Message], list[tuple[Message, dict]]]:
    """(prompt, answers), each answer with its provenance. The prompt is the conversation up to its last
    user turn. The answers are the candidates when there are two or more (the exporter's convention: a
    trailing assistant turn is then one of them, or ignored); with fewer, the trailing assistant turn comes
    first, then the candidate."""
    last_user = max((i for i, m in enumerate(sample.messages) if m.role == "user"), default=None)
    if last_user is None:
        raise ValueError(f"preference sample {sample.id}: no user turn to answer")
    prompt = sample.messages[: last_user + 1]
    answers = [(c.message, c.provenance) for c in sample.candidates]
    if len(answers) < 2:
        answers = [(m, sample.provenance) for m in sample.messages[last_user + 1:] if m.role == "assistant"] + answers
    return prompt, answers


def _metadata(sample: Sample, layout: Layout) -> dict[str, Any]:
    p = sample.persona or {}
    attrs = p.get("attributes", p) if isinstance(p, dict) else {}
    md: dict[str, Any] = {
        "generator": sample.provenance.get("generator"),
        "model": sample.provenance.get("model"),
        "persona_domain": attrs.get("domain"),
        "persona_region": attrs.get("region"),
        "persona_age_band": attrs.get("age_band"),
        "persona_expertise": attrs.get("expertise"),
        "persona_style": attrs.get("communication_style"),
        "n_turns": sum(m.role == "user" for m in sample.messages),
        "n_chars": sum(len(m.content) + len(m.reasoning or "") for m in sample.messages),
    }
    i = last_assistant_index(sample)
    md["answer_chars"] = len(sample.messages[i].content) if i is not None else 0
    if layout.kind == "reasoning":
        md["reasoning_chars"] = sum(len(m.reasoning or "") for m in sample.messages)
    if layout.kind == "tool_use":
        md["n_tools"] = len(sample.tools)
        md["n_tool_calls"] = sum(len(m.tool_calls) for m in sample.messages)
    if layout.kind == "preference":
        md["n_answers"] = len(preference_parts(sample)[1])
    for v in sample.verdicts:
        if v.score is not None:
            md[score_property(v.filter)] = float(v.score)
    md = {k: (str(v) if k in ("generator", "model") or k.startswith("persona_") else v)
          for k, v in md.items() if v is not None}
    md[SAMPLE_KEY] = canonical_json(sample.to_dict())
    return md


def score_property(filter_name: str) -> str:
    return "score_" + "".join(c if c.isalnum() else "_" for c in filter_name.lower())


def _judge_suggestions(sample: Sample, judge: str | None) -> dict[str, tuple[Any, float | None, str]]:
    verdict = next((v for v in reversed(sample.verdicts) if judge and v.filter == judge), None)
    if verdict is None:
        return {}
    out: dict[str, tuple[Any, float | None, str]] = {}
    score = verdict.score
    unit = None
    if score is not None:
        unit = score if 0.0 <= score <= 1.0 else (score - 1) / 4 if 1.0 <= score <= 5.0 else None
    out[VERDICT] = (ACCEPT if verdict.keep else REJECT, unit, judge)
    if unit is not None:
        out[QUALITY] = (int(round(1 + 4 * unit)), unit, judge)
    return out


def build_record(sample: Sample, layout: Layout, question_ids: dict[str, str], judge: str | None = "judge",
                 vector: list[float] | None = None) -> dict[str, Any]:
    """The bulk-upsert item for one sample. `question_ids` maps question names to the dataset's ids."""
    if sample.kind != layout.kind:
        raise ValueError(f"sample {sample.id} is of kind {sample.kind!r}, the dataset holds {layout.kind!r}")
    fields: dict[str, Any] = {}
    suggestions: dict[str, tuple[Any, float | None, str]] = _judge_suggestions(sample, judge)
    if layout.kind == "preference":
        prompt, answers = preference_parts(sample)
        if len(answers) < 2:
            raise ValueError(f"preference sample {sample.id} has {len(answers)} answer(s); ranking needs 2 or more")
        if len(answers) > layout.answer_slots:
            raise ValueError(f"preference sample {sample.id} has {len(answers)} answers but the dataset shows "
                             f"{layout.answer_slots}; raise the push's `answers` parameter")
        fields["prompt"] = [chat_message(m) for m in prompt]
        for name, (m, _) in zip(layout.answer_names, answers):
            fields[name] = chat_message(m)["content"]
        suggestions.pop("quality", None)
    else:
        if not sample.messages:
            raise ValueError(f"sample {sample.id} has no conversation to review")
        fields["conversation"] = [chat_message(m) for m in sample.messages]
        if layout.kind == "reasoning":
            thoughts = [m.reasoning for m in sample.messages if m.role == "assistant" and m.reasoning]
            if thoughts:
                fields["reasoning"] = _clip("\n\n---\n\n".join(thoughts))
        if layout.kind == "tool_use" and sample.tools:
            fields["tools"] = _clip(tools_markdown(sample.tools))
        i = last_assistant_index(sample)
        if i is not None:
            text = answer_text(sample.messages[i], layout.kind)
            if text:
                suggestions[CORRECTION] = (text, None, "original")
    record: dict[str, Any] = {
        "external_id": sample.id,
        "fields": fields,
        "metadata": _metadata(sample, layout),
        "suggestions": [
            {"question_id": question_ids[name], "value": value, "agent": agent, "type": "model",
             **({"score": score} if score is not None else {})}
            for name, (value, score, agent) in suggestions.items() if name in question_ids
        ],
    }
    if vector is not None:
        record["vectors"] = {EMBEDDING: vector}
    return record


def embedding_text(sample: Sample) -> str:
    """What the "find similar" vector encodes: the user side and the final answer."""
    return sample.text()[:4000]
