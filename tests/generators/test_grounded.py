"""seeds.documents and generate.grounded on the real embedded model: passages cut along the documents'
structure, QA that keeps its source passage, schema-valid JSON extraction, and invalid structured output
dropped with a verdict that keeps the raw text."""

import json

import jsonschema
import pytest

from pipelines.generators.grounded import DEFAULT_SCHEMA
from pipelines.generators.support import repeated_items, unsupported_values
from tests.generators.helpers import assert_provenance, make_step, run

QA_DROPS = {"not_a_question", "copied_example", "question_off_passage", "empty_question", "empty_answer"}


def test_documents_are_cut_into_passages(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nIntro line one.\nIntro line two continues.\n\n## Beta\n\n"
                               + "Sentence number one is here. " * 20 + "\n\n## Stub\n\nTiny.\n")
    (docs / "b.jsonl").write_text(json.dumps({"text": "A JSONL document about rivers and lakes. " * 3,
                                              "title": "Rivers"}) + "\n")
    (docs / "ignored.csv").write_text("x,y\n")
    out = run(make_step("seeds.documents", tmp_path, llm=False, paths=[str(docs)], max_chars=200, min_chars=40), [])
    assert all(s.kind == "seed" and 40 <= len(s.meta["passage"]) <= 200 for s in out)
    titles = [(s.meta["document"], s.meta["title"]) for s in out]
    assert ("a.md", "Alpha") in titles and ("a.md", "Beta") in titles and ("b.jsonl:1", "Rivers") in titles
    assert not any(t == "Stub" for _, t in titles)  # shorter than min_chars
    assert len([t for t in titles if t[1] == "Beta"]) >= 3  # a long section splits at sentence ends
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run(make_step("seeds.documents", tmp_path, llm=False, paths=["no/such/dir"]), [])


def test_bundled_documents_load(tmp_path):
    out = run(make_step("seeds.documents", tmp_path, llm=False), [])
    assert len(out) >= 10 and len({s.meta["document"] for s in out}) == 5


@pytest.fixture(scope="module")
def passages(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grounded")
    return tmp, run(make_step("seeds.documents", tmp, llm=False), [])


def test_qa_keeps_the_source_passage(passages):
    tmp, docs = passages
    out = run(make_step("generate.grounded", tmp, task="qa", n_examples=1, max_question_tokens=32,
                        max_answer_tokens=32), docs[:2])
    assert len(out) == 2
    for seed, s in zip(docs, out):
        if s.dropped:
            assert s.verdicts[-1].reason in QA_DROPS
            continue
        assert s.kind == "chat" and [m.role for m in s.messages] == ["system", "user", "assistant"]
        assert s.meta["passage"] == seed.meta["passage"] and s.meta["passage"] in s.messages[0].content
        assert s.messages[1].content.endswith("?") and s.messages[2].content.strip()
        assert s.meta["task"] == "qa" and s.provenance["document"] == seed.meta["document"]
        assert_provenance(s, "generate.grounded", "grounded/fewshot_question.jinja")


def test_extraction_is_schema_valid_json(passages):
    tmp, docs = passages
    out = run(make_step("generate.grounded", tmp, task="extract"), docs[:6])
    # Most of these are dropped as unsupported_extraction: the 270M model often copies a few-shot example's
    # extraction (with one example shown, nearly always: VAT invoice facts for a passage on drug trials).
    assert any(not s.dropped for s in out), [s.verdicts[-1].to_dict() for s in out]
    for seed, s in zip(docs, out):
        if s.dropped:
            assert s.verdicts[-1].reason in ("unsupported_extraction", "repeated_items", "structured_output_invalid")
            continue
        user, assistant = s.messages
        assert seed.meta["passage"] in user.content
        value = json.loads(assistant.content)
        jsonschema.validate(value, DEFAULT_SCHEMA)
        assert s.meta["extracted"] == value and s.meta["schema"] == DEFAULT_SCHEMA
        assert unsupported_values(value, seed.meta["passage"], 0.5) == [] and repeated_items(value) == []
        assert_provenance(s, "generate.grounded", "grounded/fewshot_extract.jinja")


def test_invalid_structured_output_is_dropped_with_the_raw_text(passages):
    tmp, docs = passages
    # 16 tokens cannot hold a whole object of this schema: the JSON is cut off, so it cannot validate.
    [s] = run(make_step("generate.grounded", tmp, task="extract", n_examples=0, max_json_tokens=16), docs[3:4])
    assert s.dropped
    v = s.verdicts[-1]
    assert v.reason == "structured_output_invalid" and v.filter == "generate.grounded"
    assert v.details["stage"] == "extract" and v.details["raw"].startswith("{")


def test_chat_template_extraction_uses_the_schema(passages):
    tmp, docs = passages
    [s] = run(make_step("generate.grounded", tmp, task="extract", template="chat"), docs[4:5])
    if s.dropped:
        v = s.verdicts[-1]
        if v.reason == "unsupported_extraction":  # schema-valid, but not about this passage
            jsonschema.validate(v.details["extracted"], DEFAULT_SCHEMA)
            assert v.details["unsupported"]
        else:
            assert v.reason == "structured_output_invalid" and v.details["raw"]
    else:
        jsonschema.validate(json.loads(s.messages[1].content), DEFAULT_SCHEMA)
        assert s.provenance["template"] == "grounded/extract_user.jinja"


PASSAGE = "Phase I trials test a new drug in a small group of 20 to 80 people for 12 weeks, mainly for safety."


@pytest.mark.parametrize("extracted, unsupported", [
    ({"topic": "Phase I trials", "facts": ["Phase I trials mainly test safety.", "They last 12 weeks."]}, []),
    ({"entities": ["trial"], "size": 80, "ok": True}, []),                                     # stems, numbers
    ({"facts": ["Patients report higher satisfaction with the dosage."]},
     ["facts[0]='Patients report higher satisfaction with the dosage.'"]),
    ({"topic": "Phase I trials", "size": 40}, ["size=40"]),
])
def test_extraction_support(extracted, unsupported):
    assert unsupported_values(extracted, PASSAGE, 0.5) == unsupported


def test_repeated_items():
    assert repeated_items({"entities": ["farmers", "irrigation", "Farmers"], "facts": ["a", "b"]}) == ["entities"]
    assert repeated_items({"a": [{"x": [1, 1]}], "b": [1, 2]}) == ["a[0].x"]
    assert repeated_items({"entities": ["Danube", "Volga"]}) == []


def test_unsupported_extractions_are_dropped_with_the_values(passages):
    tmp, docs = passages
    strict = run(make_step("generate.grounded", tmp, task="extract", min_support=1.0), docs[:6])
    relaxed = run(make_step("generate.grounded", tmp, task="extract", min_support=0.0), docs[:6])
    for seed, s, r in zip(docs, strict, relaxed):
        if r.dropped:  # with the support check off, only the schema or a repeated item can drop
            assert r.verdicts[-1].reason in ("structured_output_invalid", "repeated_items")
            continue
        # The same extraction (same seed, from the cache), judged by the two thresholds.
        left = unsupported_values(r.meta["extracted"], seed.meta["passage"], 1.0)
        if left:
            v = s.verdicts[-1]
            assert s.dropped and v.reason == "unsupported_extraction" and v.details["unsupported"] == left
        else:
            assert not s.dropped and s.meta["extracted"] == r.meta["extracted"]
    assert any(s.dropped and s.verdicts[-1].reason == "unsupported_extraction" for s in strict)
