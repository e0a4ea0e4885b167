"""BFCL v4 questions and ground truth, read from ../shared/data/bfcl, for the tool tests."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pipelines.tools.catalog import BFCL_CATEGORIES, bfcl_dir

# Ground-truth calls that are wrong in BFCL itself, with what is wrong (checked by hand):
KNOWN_BAD_GROUND_TRUTH = {
    "simple_python_307": "venue: true where the schema asks for a string",
    "parallel_152": "mod: null where the schema asks for a number",
    "parallel_multiple_12": "passes permeability to calculate_voltage_difference, which has no such parameter",
    "parallel_multiple_21": "passes the strings \"data['sales']\" where the schema asks for arrays",
    "parallel_multiple_26": "passes 'type' to bank.calculate_balance, which has no such parameter",
    "parallel_multiple_94": "sorts strings with sort_list, whose elements are integers",
}


@cache
def questions() -> dict[str, list[dict[str, Any]]]:
    return {c: [json.loads(line) for line in open(bfcl_dir() / f"BFCL_v4_{c}.json", encoding="utf-8")]
            for c in BFCL_CATEGORIES}


@cache
def ground_truth() -> dict[str, list[dict[str, Any]]]:
    """id -> BFCL's ground truth: per call {name: {argument: [acceptable values]}} ("" = may be omitted)."""
    out = {}
    for c in BFCL_CATEGORIES:
        for line in open(bfcl_dir() / f"BFCL_v4_{c}.possible_answer.json", encoding="utf-8"):
            row = json.loads(line)
            out[row["id"]] = row["ground_truth"]
    return out


def _resolve(value: Any) -> Any:
    # Inside an acceptable value, a mapping again maps keys to lists of acceptable values.
    if isinstance(value, dict):
        return {k: picked for k, v in value.items() if (picked := first_acceptable(v)) is not _OMIT}
    if isinstance(value, list):
        return [_resolve(v) for v in value]
    return value


_OMIT = object()


def first_acceptable(candidates: list[Any]) -> Any:
    for v in candidates:
        if v != "":
            return _resolve(v)
    return _OMIT


def calls_of(qid: str) -> list[dict[str, Any]]:
    """One concrete call per ground-truth call: the first acceptable value of each argument."""
    calls = []
    for call in ground_truth()[qid]:
        (name, args), = call.items()
        calls.append({"name": name, "arguments": {k: p for k, v in args.items()
                                                  if (p := first_acceptable(v)) is not _OMIT}})
    return calls
