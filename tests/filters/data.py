"""Real reference data for the filter tests, read from the shared data folder (never copied or edited)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from filters.decontaminate import shared_data_dir
from pipelines.core.sample import Message, Sample, ToolCall

BFCL_CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple")


def data_dir() -> Path:
    root = shared_data_dir()
    assert (root / "gsm8k" / "test.jsonl").is_file(), f"shared data not found at {root}"
    return root


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@cache
def gsm8k(split: str) -> tuple[dict[str, Any], ...]:
    return tuple(_jsonl(data_dir() / "gsm8k" / f"{split}.jsonl"))


def first_acceptable(value: Any) -> Any:
    """BFCL nests acceptable-value lists inside dict values too: {"min": [300000]} means min = 300000."""
    if isinstance(value, dict):
        return {k: first_acceptable(v[0]) for k, v in value.items() if v and v[0] != ""}
    if isinstance(value, list):
        return [first_acceptable(v) for v in value]
    return value


@cache
def bfcl_samples() -> tuple[tuple[str, Sample], ...]:
    """(BFCL id, tool_use sample) for every question: the user turn, then one assistant turn whose calls are
    built from each argument's first acceptable value ("" first means: leave the argument out)."""
    out = []
    for cat in BFCL_CATEGORIES:
        answers = {a["id"]: a["ground_truth"] for a in _jsonl(data_dir() / "bfcl" / f"BFCL_v4_{cat}.possible_answer.json")}
        for q in _jsonl(data_dir() / "bfcl" / f"BFCL_v4_{cat}.json"):
            calls = []
            for call in answers[q["id"]]:
                (name, args), = call.items()
                calls.append(ToolCall(name, {k: first_acceptable(v[0]) for k, v in args.items() if v and v[0] != ""}))
            user = "\n".join(m["content"] for m in q["question"][0])
            sample = Sample(kind="tool_use", messages=[Message("user", user), Message("assistant", "", tool_calls=calls)],
                            tools=q["function"])
            out.append((q["id"], sample))
    return tuple(out)
