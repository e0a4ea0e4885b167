"""generate.candidates on the real embedded model: n candidates with their provenance next to the
original answer, reasoning candidates keep reasoning apart, tool-call turns are dropped with a reason."""

import pytest

from pipelines.core.sample import Message, Sample, ToolCall
from tests.generators.helpers import MODEL_PREFIX, make_step, run

CHAT = Sample(kind="chat", messages=[
    Message("user", "What is a good way to remember to water my plants?"),
    Message("assistant", "Set a weekly reminder on your phone, and keep the watering can next to the plants."),
], provenance={"generator": "generate.multi_turn", "template": "multi_turn/fewshot.jinja", "model": "m"})
REASONING = Sample(kind="reasoning", messages=[
    Message("user", "Anna has 3 boxes of 12 eggs and uses 7. How many eggs are left?"),
    Message("assistant", "29", reasoning="3 x 12 = 36 eggs. 36 - 7 = 29."),
], meta={"reference_answer": "29"})


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("candidates")
    step = make_step("generate.candidates", tmp, n=2, temperatures=[0.2, 1.1], styles=["concise", "detailed"],
                     n_examples=1, max_tokens=24, max_reasoning_tokens=32)
    return run(step, [CHAT, REASONING])


def test_candidates_sit_next_to_the_original(generated):
    chat, reasoning = generated
    for s, source in ((chat, CHAT), (reasoning, REASONING)):
        if s.dropped:
            assert s.verdicts[-1].reason == "empty_candidate"
            continue
        assert s.kind == "preference" and s.messages == source.messages and s.meta == source.meta
        assert len(s.candidates) == 3
        original, *new = s.candidates
        assert original.message == source.messages[-1] and original.provenance["origin"] == "original"
        for i, c in enumerate(new):
            assert c.message.role == "assistant" and c.message.content.strip()
            p = c.provenance
            assert p["origin"] == "generated" and p["generator"] == "generate.candidates"
            assert p["sampling"]["temperature"] == [0.2, 1.1][i] and len(p["template_hash"]) == 12
            assert p["model"].startswith(MODEL_PREFIX) and p["tokens_out"] > 0
        assert new[0].provenance["sampling"]["seed"] != new[1].provenance["sampling"]["seed"]
    if not chat.dropped:
        assert [c.provenance["style"] for c in chat.candidates[1:]] == ["concise", "detailed"]
        assert chat.candidates[1].provenance["template"] == "candidates/fewshot.jinja"
        assert chat.provenance["generator"] == "generate.multi_turn"  # the sample's own origin stays
    if not reasoning.dropped:
        for c in reasoning.candidates[1:]:
            assert c.message.reasoning and c.provenance["template"] == "reasoning/fewshot.jinja"


def test_tool_call_turns_and_missing_prompts(tmp_path):
    call = Sample(kind="tool_use", messages=[
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=[ToolCall("get_weather", {"city": "Paris"})])])
    [s] = run(make_step("generate.candidates", tmp_path), [call])
    assert s.dropped and s.verdicts[-1].reason == "candidates_for_tool_call"
    with pytest.raises(ValueError, match="no user turn"):
        run(make_step("generate.candidates", tmp_path), [Sample(kind="seed", meta={"x": 1})])


def test_extraction_candidates_are_schema_valid(tmp_path):
    import json

    import jsonschema

    from pipelines.generators.grounded import DEFAULT_SCHEMA

    [doc] = run(make_step("seeds.documents", tmp_path, llm=False, limit=1), [])
    # min_support 0: this test is about candidates; whether the 270M model's extraction uses the passage's
    # words is tests/generators/test_grounded.py's business (with one example shown, it mostly copies it).
    [s] = run(make_step("generate.grounded", tmp_path, task="extract", n_examples=1, min_support=0.0), [doc])
    assert not s.dropped, s.verdicts[-1].to_dict()
    [c] = run(make_step("generate.candidates", tmp_path, n=1, n_examples=1, include_original=False), [s])
    if c.dropped:  # schema-invalid candidate output is a drop that keeps the raw text
        assert c.verdicts[-1].reason == "structured_output_invalid" and "raw" in c.verdicts[-1].details
        return
    [cand] = c.candidates
    jsonschema.validate(json.loads(cand.message.content), DEFAULT_SCHEMA)
    assert cand.provenance["template"] == "grounded/fewshot_extract.jinja" and cand.provenance["style"] is None
