"""Turn a snapshot's answers into samples: accepted samples (corrections merged in, preference rankings
turned into chosen/rejected), and every other record dropped with a verdict that says why.

A vote is a submitted response (its `verdict` answer) or a discarded one (counts as a reject). A record
is decided once it has `min_votes` votes (default: the dataset's task distribution); before that it is
dropped as `pending_review`. Conflict policies:

- majority:  more accepts than rejects keeps, more rejects drops, a tie drops as `review_conflict`;
- unanimous: every vote must agree, otherwise `review_conflict`;
- latest:    the most recent vote decides (an adjudicator's pass after the annotators').

Corrections come from the accepting votes. Equal corrections are merged; different ones drop the sample as
`correction_conflict` (under `latest`, the latest vote's correction wins). A tool-call correction must be
valid JSON naming offered tools, or the sample drops as `invalid_correction`.

Preference: the accepting votes' ranks are averaged per answer. The sample comes out in the form the
exporter reads: every answer in `candidates`, `meta.ranking` (candidate indices, best first),
`meta.preference` {chosen, rejected} (the best against the worst answer, or with `pairs: best_vs_second`
against the next strictly worse one), and the chosen answer as the final assistant turn. A tie for first
drops the sample as `ranking_tie`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from statistics import mean
from typing import Any, Literal

from pipelines.core.sample import Candidate, Sample, ToolCall, Verdict
from review_ui.agreement import vote_label
from review_ui.layout import ACCEPT, CORRECTION, QUALITY, RANKING, RATIONALE
from review_ui.records import last_assistant_index, preference_parts

Policy = Literal["majority", "unanimous", "latest"]
Pairs = Literal["best_vs_worst", "best_vs_second"]


class _Drop(Exception):
    def __init__(self, reason: str, **details: Any):
        self.reason, self.details = reason, details


def merge_record(row: dict[str, Any], *, policy: Policy = "majority", min_votes: int = 1,
                 pairs: Pairs = "best_vs_worst", filter_name: str = "review", snapshot: str = "") -> Sample:
    """One snapshot row -> one sample, kept (last verdict keep=True) or dropped with the reason."""
    sample = Sample.from_dict(row["sample"])
    votes = [r for r in row["responses"] if vote_label(r) is not None]
    labels = {r["user"]: vote_label(r) for r in votes}
    details: dict[str, Any] = {"votes": labels, "snapshot": snapshot, "record_id": row["record_id"]}
    rationales = {r["user"]: r["values"][RATIONALE] for r in votes
                  if r["status"] == "submitted" and r["values"].get(RATIONALE)}
    if rationales:
        details["rationales"] = rationales
    ratings = [r["values"][QUALITY] for r in votes if r["status"] == "submitted" and r["values"].get(QUALITY)]
    if ratings:
        details["quality"] = round(mean(ratings), 3)

    def drop(reason: str, **more: Any) -> Sample:
        return sample.with_verdict(Verdict(filter_name, False, reason, score=_share(labels),
                                           details={**details, **more}))

    if len(votes) < min_votes:
        return drop("pending_review", required=min_votes, have=len(votes))
    decision, deciders = _decide(votes, policy)
    if decision == "conflict":
        return drop("review_conflict")
    if decision != ACCEPT:
        all_discarded = all(r["status"] == "discarded" for r in deciders)
        return drop("discarded_in_review" if all_discarded else "rejected_in_review")
    try:
        if sample.kind == "preference":
            merged, extra = _rank(sample, deciders, pairs)
        else:
            merged, extra = _correct(sample, deciders, policy)
    except _Drop as d:
        return drop(d.reason, **d.details)
    review = {**details, **extra, "original_id": sample.id, "accepted_by": [r["user"] for r in deciders]}
    merged = replace(merged, meta={**merged.meta, "review": review})
    return merged.with_verdict(Verdict(filter_name, True, "accepted", score=_share(labels), details=review))


def _share(labels: dict[str, str]) -> float | None:
    return round(sum(v == ACCEPT for v in labels.values()) / len(labels), 4) if labels else None


def _decide(votes: list[dict], policy: Policy) -> tuple[str, list[dict]]:
    """(accept | reject | conflict, the votes that carry the decision)."""
    if policy == "latest":
        last = max(votes, key=lambda r: r["updated_at"])
        return vote_label(last), [last]
    accepts = [r for r in votes if vote_label(r) == ACCEPT]
    rejects = [r for r in votes if vote_label(r) != ACCEPT]
    if policy == "unanimous":
        return (ACCEPT, accepts) if not rejects else ("reject", rejects) if not accepts else ("conflict", votes)
    if policy == "majority":
        if len(accepts) == len(rejects):
            return "conflict", votes
        return (ACCEPT, accepts) if len(accepts) > len(rejects) else ("reject", rejects)
    raise ValueError(f"unknown conflict policy {policy!r}; use majority, unanimous or latest")


def _correct(sample: Sample, deciders: list[dict], policy: Policy) -> tuple[Sample, dict]:
    i = last_assistant_index(sample)
    if i is None:
        return sample, {}
    original = sample.messages[i]
    as_calls = sample.kind == "tool_use" and bool(original.tool_calls)
    base = _norm(json.dumps([c.to_dict() for c in original.tool_calls], sort_keys=True) if as_calls
                 else original.content)
    edits: dict[str, Any] = {}
    for r in deciders:
        text = r["values"].get(CORRECTION)
        if not isinstance(text, str) or not text.strip():
            continue
        value = _parse_calls(text, sample) if as_calls else text.strip()
        key = json.dumps([c.to_dict() for c in value], sort_keys=True) if as_calls else value
        if _norm(key) != base:
            edits[r["user"]] = (key, value)
    if not edits:
        return sample, {"corrected": False}
    distinct = {k for k, _ in edits.values()}
    if len(distinct) > 1 and policy != "latest":
        raise _Drop("correction_conflict", corrections={u: k for u, (k, _) in edits.items()})
    value = next(iter(edits.values()))[1]
    fixed = replace(original, tool_calls=value) if as_calls else replace(original, content=value)
    messages = [*sample.messages[:i], fixed, *sample.messages[i + 1:]]
    return replace(sample, messages=messages), {"corrected": True, "corrected_by": sorted(edits),
                                                "original_answer": original.to_dict()}


def _norm(text: str) -> str:
    return " ".join(text.split())


def _parse_calls(text: str, sample: Sample) -> list[ToolCall]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise _Drop("invalid_correction", error=f"corrected tool calls are not JSON: {e}", text=text) from None
    if isinstance(data, dict):
        data = [data]
    offered = {(t.get("function", t) or {}).get("name") for t in sample.tools if isinstance(t, dict)}
    calls = []
    for c in data if isinstance(data, list) else [None]:
        if not (isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("arguments", {}), dict)
                and set(c) <= {"name", "arguments", "id"}):
            raise _Drop("invalid_correction", error='each call must be {"name": str, "arguments": {...}}', text=text)
        if offered and c["name"] not in offered:
            raise _Drop("invalid_correction", error=f"tool {c['name']!r} is not offered", text=text)
        calls.append(ToolCall(c["name"], dict(c.get("arguments") or {}), c.get("id")))
    return calls


def _rank(sample: Sample, deciders: list[dict], pairs: Pairs) -> tuple[Sample, dict]:
    prompt, answers = preference_parts(sample)
    names = [f"answer_{k}" for k in range(1, len(answers) + 1)]
    ranks: dict[str, list[int]] = {n: [] for n in names}
    for r in deciders:
        for item in r["values"].get(RANKING) or []:
            if item.get("value") in ranks and item.get("rank") is not None:
                ranks[item["value"]].append(int(item["rank"]))
    if any(not v for v in ranks.values()):
        raise _Drop("ranking_missing", ranks=ranks)
    means = [float(mean(ranks[n])) for n in names]
    order = sorted(range(len(names)), key=lambda k: (means[k], k))  # best first
    best = means[order[0]]
    if means.count(best) > 1:
        raise _Drop("ranking_tie", mean_ranks=dict(zip(names, means)))
    worse = [k for k in order if means[k] > best]
    rejected = worse[-1] if pairs == "best_vs_worst" else worse[0]
    candidates = [Candidate(m, prov, None) for m, prov in answers]
    merged = replace(sample, messages=[*prompt, answers[order[0]][0]], candidates=candidates,
                     meta={**sample.meta, "preference": {"chosen": order[0], "rejected": rejected}, "ranking": order})
    return merged, {"mean_ranks": dict(zip(names, means)), "chosen": names[order[0]], "rejected": names[rejected]}
