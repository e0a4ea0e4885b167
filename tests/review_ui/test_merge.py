"""Conflict policies and corrections on snapshot rows, without a server (the rows have the exact shape
`refinery review pull` writes; the end-to-end tests produce them from real annotations)."""

from __future__ import annotations

import pytest

from review_ui.agreement import agreement
from review_ui.merge import merge_record
from tests.review_ui.make_samples import make_sample


def _row(sample, *responses):
    return {"external_id": sample.id, "record_id": "r1", "status": "completed", "sample": sample.to_dict(),
            "responses": [{"user": u, "user_id": u, "status": st, "values": vals, "updated_at": f"2026-01-0{i + 1}"}
                          for i, (u, st, vals) in enumerate(responses)]}


def _reason(row, **kw):
    return merge_record(row, **kw).verdicts[-1].reason


@pytest.mark.parametrize("policy,expected", [("majority", "review_conflict"), ("unanimous", "review_conflict"),
                                             ("latest", "rejected_in_review")])
def test_split_vote_follows_the_policy(policy, expected):
    row = _row(make_sample("chat", 0), ("a", "submitted", {"verdict": "accept"}), ("b", "submitted", {"verdict": "reject"}))
    assert _reason(row, policy=policy) == expected


def test_majority_of_three_and_discard_counts_as_reject():
    s = make_sample("chat", 1)
    two_to_one = _row(s, ("a", "submitted", {"verdict": "accept"}), ("b", "discarded", {}),
                      ("c", "submitted", {"verdict": "accept"}))
    assert _reason(two_to_one) == "accepted" and _reason(two_to_one, policy="unanimous") == "review_conflict"
    assert _reason(_row(s, ("a", "discarded", {}))) == "discarded_in_review"
    assert _reason(_row(s, ("a", "draft", {"verdict": "accept"}))) == "pending_review"  # drafts are not votes
    assert _reason(_row(s, ("a", "submitted", {"verdict": "accept"})), min_votes=2) == "pending_review"


def test_latest_vote_wins_corrections_too():
    s = make_sample("chat", 2)
    row = _row(s, ("a", "submitted", {"verdict": "accept", "corrected_answer": "First fix."}),
               ("b", "submitted", {"verdict": "accept", "corrected_answer": "Second fix."}))
    assert _reason(row) == "correction_conflict"
    latest = merge_record(row, policy="latest")
    assert latest.messages[-1].content == "Second fix." and latest.meta["review"]["corrected_by"] == ["b"]


def test_tool_call_correction_must_name_an_offered_tool():
    s = make_sample("tool_use", 1)  # ends with the call
    bad = _row(s, ("a", "submitted", {"verdict": "accept",
                                      "corrected_answer": '[{"name": "delete_all", "arguments": {}}]'}))
    dropped = merge_record(bad)
    assert dropped.verdicts[-1].reason == "invalid_correction" and "not offered" in dropped.verdicts[-1].details["error"]


def test_preference_pairs_and_agreement():
    s = make_sample("preference", 3)
    rank = lambda first, second: {"verdict": "accept", "ranking": [{"value": first, "rank": 1},
                                                                   {"value": second, "rank": 2}]}
    row = _row(s, ("a", "submitted", rank("answer_2", "answer_1")), ("b", "submitted", rank("answer_2", "answer_1")))
    out = merge_record(row, min_votes=2)
    assert out.meta["preference"] == {"chosen": 1, "rejected": 0} and out.meta["ranking"] == [1, 0]
    assert out.messages[-1] == out.candidates[1].message and len(out.candidates) == 2
    ag = agreement([row, _row(s, ("a", "submitted", rank("answer_1", "answer_2")),
                              ("b", "submitted", rank("answer_2", "answer_1")))], "preference", {s.id: 2})
    assert ag["verdict_percent_agreement"] == 1.0 and ag["records_with_2plus_answers"] == 2
