"""filter.judge on the real embedded model (Gemma 3 270M base, llama.cpp): few-shot prompt, grammar-
constrained JSON grade, score in the verdict, threshold applied, answers cached for a rerun."""

from __future__ import annotations

import pytest

from filters.judge import GRADE_SCHEMA, render_conversation
from pipelines.core.sample import Message, Sample
from pipelines.llm.cache import cache_report
from pipelines.llm.client import LLMConfig
from tests.filters.conftest import make_step

# The few-shot (base-model) strategy is what these tests exercise; the instruct default has its own tests.
BASE_MODEL = "embedded-gemma-270m"

LLM = LLMConfig(model=BASE_MODEL, n_threads=2, seed=5).model_dump()


def samples() -> list[Sample]:
    return [
        Sample(kind="chat", messages=[Message("user", "What is the capital of France?"),
                                      Message("assistant", "The capital of France is Paris.")]),
        Sample(kind="chat", messages=[Message("user", "How many legs does a spider have?"),
                                      Message("assistant", "Bananas are yellow. Bananas bananas bananas.")]),
    ]


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("judge")
    step = make_step("filter.judge", tmp, llm=LLM, threshold=4.0, n_examples=3)
    try:
        out = list(step.run(iter(samples())))
    finally:
        step.ctx.close()
    return tmp, out


def test_scores_are_verdict_scores_and_the_threshold_decides(judged):
    _, out = judged
    assert [s.id for s in out] == [s.id for s in samples()]
    for s in out:
        v = s.verdicts[-1]
        assert v.filter == "judge"
        assert isinstance(v.score, float) and 1.0 <= v.score <= 5.0
        assert v.keep == (v.score >= 4.0)
        assert v.reason == ("" if v.keep else "low_judge_score")
        assert v.details["reason"].strip() and v.details["rubric"] == "helpfulness"
        assert v.details["model"].startswith("llama_cpp:") and len(v.details["template_hash"]) == 12


def test_rerun_is_answered_from_the_cache(judged):
    tmp, out = judged
    step = make_step("filter.judge", tmp, llm=LLM, threshold=4.0, n_examples=3)
    try:
        again = list(step.run(iter(samples())))
    finally:
        step.ctx.close()
    assert [s.verdicts[-1].score for s in again] == [s.verdicts[-1].score for s in out]
    assert all(s.verdicts[-1].details["cached"] for s in again)
    assert cache_report(tmp / "llm_cache.sqlite")["prompts_sent_twice"] == 0


def test_prompt_material():
    text = render_conversation(samples()[0], max_chars=30)
    assert text.startswith("User: What is the capital") and text.endswith("[...]")
    assert GRADE_SCHEMA["properties"]["score"] == {"type": "integer", "minimum": 1, "maximum": 5}


def test_a_grounded_sample_is_judged_against_its_source(tmp_path):
    passage = "Phase I trials test a new drug in a small group of people, mainly for safety."
    s = Sample(kind="chat", meta={"passage": passage},
               messages=[Message("system", f"Answer from this document: {passage}"),
                         Message("user", "What do phase I trials test?"),
                         Message("assistant", "They compare the drug with a placebo in thousands of people.")])
    assert render_conversation(s, 2000).startswith(f"Source document: {passage}\nUser: What do phase I")
    step = make_step("filter.judge", tmp_path, llm=LLM, rubric="faithfulness", threshold=1.0, n_examples=2)
    try:
        [out] = list(step.run(iter([s])))
    finally:
        step.ctx.close()
    v = out.verdicts[-1]
    assert v.details["rubric"] == "faithfulness" and 1 <= v.score <= 5 and v.details["reason"].strip()
