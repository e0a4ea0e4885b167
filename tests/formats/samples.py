"""Conversations for the format tests: BFCL-derived tool use (real schemas and ground-truth calls from
../shared/data/bfcl), multi-turn chat, reasoning and preference samples; and the tiny tokenizer."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from pipelines.core.sample import Candidate, Message, Sample, ToolCall

BFCL = Path(__file__).resolve().parents[3] / "shared" / "data" / "bfcl"
CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple")


def normalise_schema(value: Any) -> Any:
    """BFCL writes `"type": "dict"`; JSON Schema (and every chat template) says `"object"`."""
    if isinstance(value, dict):
        return {k: ("object" if k == "type" and v == "dict" else normalise_schema(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise_schema(v) for v in value]
    return value


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def ground_truth_calls(entry: dict) -> list[ToolCall]:
    """The first acceptable value of every argument; "" marks an optional argument that may be left out."""
    calls = []
    for call in entry["ground_truth"]:
        for name, args in call.items():
            arguments = {}
            for key, acceptable in args.items():
                if acceptable and acceptable[0] != "":
                    arguments[key] = acceptable[0]
            calls.append(ToolCall(name, arguments))
    return calls


@functools.lru_cache(maxsize=None)
def bfcl_entries() -> list[tuple[str, dict, list[ToolCall]]]:
    """(category, question entry, ground-truth calls) for every BFCL entry of the four categories."""
    out = []
    for category in CATEGORIES:
        questions = {q["id"]: q for q in _lines(BFCL / f"BFCL_v4_{category}.json")}
        for answer in _lines(BFCL / f"BFCL_v4_{category}.possible_answer.json"):
            out.append((category, questions[answer["id"]], ground_truth_calls(answer)))
    return out


def bfcl_sample(entry: dict, calls: list[ToolCall], with_result: bool = False) -> Sample:
    tools = [{"type": "function", "function": normalise_schema(f)} for f in entry["function"]]
    messages = [Message(m["role"], m["content"]) for m in entry["question"][0]]
    messages.append(Message("assistant", "", tool_calls=calls))
    if with_result:  # multi-step: the tool answers, the assistant reads the result back
        for c in calls:
            messages.append(Message("tool", json.dumps({"result": f"ok from {c.name}"}), name=c.name))
        messages.append(Message("assistant", "Done: " + ", ".join(c.name for c in calls) + "."))
    return Sample(kind="tool_use", messages=messages, tools=tools, provenance={"generator": "bfcl"},
                  meta={"source_id": entry["id"]})


def bfcl_samples() -> list[Sample]:
    return [bfcl_sample(entry, calls, with_result=i % 3 == 0) for i, (_, entry, calls) in enumerate(bfcl_entries())]


def chat_samples(n: int = 12) -> list[Sample]:
    out = []
    for i in range(n):
        messages = [Message("user", f"Can you help me plan a garden in zone {i}?"),
                    Message("assistant", f"Sure. Zone {i} suits tomatoes and beans; start them indoors."),
                    Message("user", "And when should I water?"),
                    Message("assistant", "Early in the morning, deeply, twice a week.\nAvoid wetting the leaves.")]
        if i % 2:
            messages.insert(0, Message("system", "You are a patient gardening assistant."))
        out.append(Sample(kind="chat", messages=messages, persona={"id": f"persona-{i % 5}"},
                          provenance={"generator": "test.chat"}))
    return out


def reasoning_samples(n: int = 8) -> list[Sample]:
    out = []
    for i in range(n):
        messages = [Message("user", f"What is {i} * 7?"),
                    Message("assistant", f"{i * 7}", reasoning=f"{i} times 7: add 7 {i} times, giving {i * 7}."),
                    Message("user", "And plus one?"),
                    Message("assistant", f"{i * 7 + 1}", reasoning=f"{i * 7} + 1 = {i * 7 + 1}.")]
        out.append(Sample(kind="reasoning", messages=messages, persona={"id": f"persona-{i % 3}"},
                          provenance={"generator": "test.reasoning"}, meta={"question": f"{i} * 7"}))
    return out


def preference_samples(n: int = 8) -> list[Sample]:
    out = []
    for i in range(n):
        good = Message("assistant", f"{i} + {i} = {2 * i}.", reasoning=f"Double {i}.")
        bad = Message("assistant", "I cannot do arithmetic.")
        mid = Message("assistant", f"It is about {2 * i + 1}.")
        out.append(Sample(kind="preference", messages=[Message("user", f"What is {i} + {i}?")],
                          candidates=[Candidate(bad, score=0.1), Candidate(good, score=0.9), Candidate(mid, score=0.5)],
                          persona={"id": f"persona-{i % 4}"}, provenance={"generator": "test.preference"}))
    return out


@functools.lru_cache(maxsize=None)
def tiny_tokenizer(chat_format: str = "lfm2"):
    """A byte-level BPE tokenizer trained here, with LFM2's special tokens (see pipelines.train.tiny)."""
    from pipelines.train.tiny import build_tokenizer

    return build_tokenizer(chat_format=chat_format)
