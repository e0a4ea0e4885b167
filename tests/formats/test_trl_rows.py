"""Sample -> TRL rows: what converts, what raises (with the sample's id), and the lossless parquet encoding."""

import json

import pyarrow as pa
import pytest

from pipelines.core.sample import Candidate, Message, Sample, ToolCall
from pipelines.export.writer import _schemas
from pipelines.formats.trl import (
    ConversionError, NoPreferenceSignal, decode_row, encode_message, preference_row, sft_row,
)
from tests.formats.samples import bfcl_samples, chat_samples, preference_samples, reasoning_samples

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
         {"name": "get_time", "parameters": {"type": "object"}}]


def test_sft_rows_round_trip_through_parquet_without_merging_arguments():
    samples = bfcl_samples()[:200] + chat_samples() + reasoning_samples()
    rows = [sft_row(s) for s in samples]
    encoded = [{"messages": [encode_message(m) for m in r["messages"]], "tools": json.dumps(r["tools"])}
               for r in rows]
    schema = pa.schema([f for f in _schemas(False)["sft"] if f.name in ("messages", "tools")])
    table = pa.Table.from_pylist(encoded, schema=schema)
    assert [decode_row(r) for r in table.to_pylist()] == rows  # each call keeps exactly its own arguments
    first = rows[1]["messages"][-1]["tool_calls"][0]
    assert set(first) == {"type", "function"} and isinstance(first["function"]["arguments"], dict)


def test_sft_row_shape():
    s = reasoning_samples(1)[0]
    row = sft_row(s)
    assert row["tools"] == [] and row["messages"][1] == {"role": "assistant", "content": "0", "reasoning": s.messages[1].reasoning}
    s = Sample(kind="chat", messages=[Message("system", ""), Message("user", "q"), Message("assistant", "a", reasoning="")])
    assert sft_row(s)["messages"] == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]


@pytest.mark.parametrize("messages, tools, problem", [
    ([Message("assistant", "hi")], [], "must start with a user turn"),
    ([Message("user", "a"), Message("user", "b"), Message("assistant", "c")], [], "two user turns"),
    ([Message("user", "a"), Message("assistant", "b"), Message("assistant", "c")], [], "two assistant turns"),
    ([Message("user", "a"), Message("tool", "r"), Message("assistant", "c")], [], "must follow an assistant"),
    ([Message("user", "a"), Message("assistant", "", tool_calls=[ToolCall("nope")])], TOOLS, "does not offer"),
    ([Message("user", "a"), Message("assistant", "")], [], "empty assistant turn"),
    ([Message("user", "a"), Message("assistant", "b"), Message("system", "c")], [], "may only come first"),
    ([Message("user", "a")], [], "ends with an assistant turn"),
    ([Message("user", "a"), Message("assistant", "b")], [{"parameters": {}}], "not a tool schema"),
])
def test_conversations_we_do_not_understand_raise_with_the_sample_id(messages, tools, problem):
    s = Sample(kind="chat", messages=messages, tools=tools)
    with pytest.raises(ConversionError) as e:
        sft_row(s)
    assert problem in str(e.value) and s.id in str(e.value)


def test_seed_and_preference_samples_have_no_sft_row():
    with pytest.raises(ConversionError, match="seed"):
        sft_row(Sample(kind="seed", meta={"question": "q"}))
    with pytest.raises(ConversionError, match="preference"):
        sft_row(preference_samples(1)[0])


def test_preference_pairs_from_scores_rankings_and_review_choices():
    s = preference_samples(2)[1]
    row = preference_row(s)
    assert row["prompt"] == [{"role": "user", "content": "What is 1 + 1?"}]
    assert row["chosen"][0]["content"] == "1 + 1 = 2." and row["rejected"][0]["content"] == "I cannot do arithmetic."
    assert (row["score_chosen"], row["score_rejected"], row["preference_source"]) == (0.9, 0.1, "scores")
    ranked = Sample(kind="preference", messages=s.messages, candidates=[Candidate(c.message) for c in s.candidates],
                    meta={"ranking": [2, 1, 0]})
    assert preference_row(ranked)["chosen"][0]["content"] == "It is about 3."
    # What review.pull writes: the chosen answer as the last turn, {chosen, rejected} in meta.
    reviewed = Sample(kind="preference", messages=[*s.messages, s.candidates[0].message],
                      candidates=[Candidate(c.message) for c in s.candidates],
                      meta={"preference": {"chosen": 0, "rejected": 2}, "ranking": [0, 2, 1]})
    row = preference_row(reviewed)
    assert row["prompt"] == [{"role": "user", "content": "What is 1 + 1?"}] and row["preference_source"] == "review"
    assert row["chosen"][0]["content"] == "I cannot do arithmetic."


def test_preference_without_a_signal_or_with_a_broken_one():
    s = preference_samples(1)[0]
    unscored = Sample(kind="preference", messages=s.messages, candidates=[Candidate(c.message) for c in s.candidates])
    with pytest.raises(NoPreferenceSignal) as e:
        preference_row(unscored)
    assert e.value.reason == "unjudged_candidates"
    tied = Sample(kind="preference", messages=s.messages, candidates=[Candidate(c.message, score=1.0) for c in s.candidates])
    with pytest.raises(NoPreferenceSignal, match="tied"):
        preference_row(tied)
    for meta, problem in [({"ranking": [0]}, "distinct candidate indices"), ({"preference": {"chosen": 0, "rejected": 7}}, "out of range"),
                          ({"preference": {"chosen": 1, "rejected": 1}}, "same candidate")]:
        with pytest.raises(ConversionError, match=problem):
            preference_row(Sample(kind="preference", messages=s.messages, candidates=s.candidates, meta=meta))
    half = Sample(kind="preference", messages=s.messages,
                  candidates=[Candidate(s.candidates[0].message, score=1.0), Candidate(s.candidates[1].message)])
    with pytest.raises(ConversionError, match="some candidates are scored"):
        preference_row(half)


def test_decode_row_is_strict():
    with pytest.raises(ValueError, match="unknown message keys"):
        decode_row({"messages": [{"role": "user", "content": "x", "weird": 1}], "tools": "[]"})
    with pytest.raises(ValueError, match="not valid JSON"):
        decode_row({"messages": [{"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "f", "arguments": "{oops"}}]}], "tools": "[]"})
    with pytest.raises(ValueError, match="not an SFT or preference row"):
        decode_row({"text": "hello"})
