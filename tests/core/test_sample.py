"""The record: stable content ids and lossless JSON and parquet round trips."""

import json

import pytest

from pipelines.core.sample import Candidate, Message, Sample, ToolCall, Verdict
from pipelines.core.shards import read_shard, write_shard


def rich_sample() -> Sample:
    return Sample(
        kind="tool_use",
        messages=[
            Message("system", "You can call tools."),
            Message("user", "Wetter in Zürich? ☀️ und 3 Tage"),
            Message("assistant", "", reasoning="Need the forecast tool.",
                    tool_calls=[ToolCall("get_weather", {"city": "Zürich", "days": 3, "units": None,
                                                         "opts": {"hourly": [1, 2.5, True]}}, id="c1")]),
            Message("tool", '{"temp": 21.5}', name="get_weather", tool_call_id="c1"),
            Message("assistant", "Sonnig, 21.5 °C."),
        ],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        candidates=[Candidate(Message("assistant", "Es ist sonnig."), {"temperature": 1.2}, 0.5)],
        persona={"id": "p1", "region": "Zürich", "age_band": "30-39"},
        provenance={"generator": "test", "tokens_in": 12, "latency_s": 0.25},
        verdicts=[Verdict("schema", True, score=1.0), Verdict("dedup", False, "exact_duplicate",
                                                              duplicate_of="abc", details={"cluster": [1, 2]})],
        meta={"reference": "21.5"},
    )


def test_id_is_content_hash_and_ignores_provenance_and_verdicts():
    a, b = rich_sample(), rich_sample()
    assert a.id == b.id and len(a.id) == 32
    b.provenance["latency_s"] = 9.0
    b.verdicts.clear()
    assert a.id == b.id
    b.messages[1].content += "!"
    assert a.id != b.id


def test_seed_samples_are_identified_by_persona_and_meta():
    assert Sample(persona={"id": "1"}).id != Sample(persona={"id": "2"}).id
    assert Sample(meta={"q": 1}).id != Sample(meta={"q": 2}).id


def test_json_round_trip_is_lossless():
    s = rich_sample()
    back = Sample.from_json(s.to_json())
    assert back == s and back.id == s.id
    assert json.loads(back.to_json()) == json.loads(s.to_json())


def test_parquet_round_trip_is_lossless(tmp_path):
    samples = [rich_sample(), Sample(kind="chat", messages=[Message("user", "hi"), Message("assistant", "")])]
    meta = write_shard(tmp_path / "x.parquet", samples)
    assert meta["rows"] == 2 and len(meta["sha256"]) == 64
    back = list(read_shard(tmp_path / "x.parquet"))
    assert back == samples
    assert [b.to_dict() for b in back] == [s.to_dict() for s in samples]


def test_an_id_read_from_a_shard_is_the_content_hash_and_does_not_outlive_a_change(tmp_path):
    from dataclasses import replace

    write_shard(tmp_path / "x.parquet", [rich_sample()])
    [back] = read_shard(tmp_path / "x.parquet")
    assert back.id == rich_sample().id == replace(back).id  # replace() recomputes from the content
    kept = back.with_verdict(Verdict("f", True))
    assert kept.id == back.id  # verdicts are not part of the id
    changed = replace(back, messages=[Message("user", "something else")])
    assert changed.id != back.id


def test_bad_records_raise_clear_errors():
    with pytest.raises(ValueError, match="role"):
        Message("robot", "x")
    with pytest.raises(ValueError, match="kind"):
        Sample(kind="essay")
    with pytest.raises(ValueError, match="unknown keys"):
        Sample.from_dict({"kind": "chat", "mesages": []})
    d = rich_sample().to_dict()
    d["messages"][1]["content"] = "edited"
    with pytest.raises(ValueError, match="does not match its content"):
        Sample.from_dict(d)
    with pytest.raises(ValueError, match="arguments must be an object"):
        ToolCall.from_dict({"name": "f", "arguments": "[1]"})


def test_integers_beyond_64_bits_survive_hashing_and_shards(tmp_path):
    # A model can write a 30-digit integer into a call or a simulated tool result.
    s = Sample(kind="tool_use", messages=[Message("user", "count"), Message("assistant", "", tool_calls=[
        ToolCall("count", {"n": 10**30})])], meta={"result": -(10**25)})
    assert Sample.from_dict(json.loads(json.dumps(s.to_dict()))).id == s.id
    write_shard(tmp_path / "big.parquet", [s])
    [back] = list(read_shard(tmp_path / "big.parquet"))
    assert back == s and back.id == s.id
