"""generate.reasoning on the real embedded model: reasoning stored apart from the answer, the reference
answer kept for the verifier, tasks from GSM8K or written per persona, and a rerun served from cache."""

import json

import pytest

from personas.bank import load_bank
from pipelines.core.sample import Sample
from pipelines.generators.reasoning import split_think
from pipelines.generators.seeds import REPO_ROOT, gsm8k_reference
from pipelines.llm.cache import cache_report
from tests.generators.helpers import assert_provenance, make_step, run

GSM8K = REPO_ROOT.parent / "shared" / "data" / "gsm8k" / "train.jsonl"
PARAMS = dict(n_examples=2, max_task_tokens=40, max_reasoning_tokens=48, max_answer_tokens=8)
DROP_REASONS = {"empty_reasoning", "empty_answer", "empty_task", "copied_example", "not_a_question"}


def inputs(tmp):
    seeds = run(make_step("seeds.gsm8k", tmp, llm=False, limit=2, shuffle_seed=5), [])
    return seeds + [Sample(kind="seed", persona=load_bank()[11].model_dump())]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reasoning")
    seeds = inputs(tmp)
    return tmp, seeds, run(make_step("generate.reasoning", tmp, **PARAMS), seeds)


def test_gsm8k_seeds_keep_the_reference_answer(tmp_path):
    seeds = run(make_step("seeds.gsm8k", tmp_path, llm=False, limit=3, shuffle_seed=None), [])
    rows = [json.loads(line) for line in GSM8K.read_text().splitlines()[:3]]
    for s, row in zip(seeds, rows):
        assert s.kind == "seed" and s.meta["task"] == row["question"].strip()
        assert s.meta["reference_answer"] == row["answer"].split("####")[-1].strip().replace(",", "")
        assert s.meta["source"].startswith("train.jsonl:")
    assert gsm8k_reference("so 3 + 4 = 7\n#### 1,200", "x") == ("1200", "so 3 + 4 = 7")
    with pytest.raises(ValueError, match="no '####"):
        gsm8k_reference("no final line", "f:1")


def test_reasoning_is_separate_from_the_answer(generated):
    _, seeds, out = generated
    assert len(out) == len(seeds)
    kept = [s for s in out if not s.dropped]
    assert kept, [s.verdicts[-1].to_dict() for s in out]
    for s in kept:
        assert s.kind == "reasoning"
        user, assistant = s.messages
        assert user.role == "user" and user.content.strip()
        assert assistant.role == "assistant" and assistant.reasoning and assistant.content.strip()
        assert assistant.reasoning.strip() != assistant.content.strip()
        assert "### Answer" not in assistant.reasoning and "<think>" not in assistant.content
        assert_provenance(s, "generate.reasoning", "reasoning/fewshot.jinja")
    for s in out:
        if s.dropped:
            assert s.verdicts[-1].reason in DROP_REASONS


def test_reference_answers_and_task_sources(generated):
    _, seeds, out = generated
    for seed, s in zip(seeds, out):
        if s.dropped:
            continue
        if seed.meta.get("task"):  # from GSM8K: the task is the question, the reference is kept
            assert s.messages[0].content == seed.meta["task"]
            assert s.meta["reference_answer"] == seed.meta["reference_answer"]
            assert s.provenance["task_source"] == "seed" and s.provenance["persona_id"] is None
        else:  # written for the persona by the model
            assert "reference_answer" not in s.meta and s.meta["task"] == s.messages[0].content
            assert s.provenance["task_source"] == "persona"
            assert s.provenance["task_template"] == "reasoning/fewshot_task.jinja"
            assert s.provenance["persona_id"] == seed.persona["id"]


def test_rerun_is_served_from_cache(generated):
    tmp, seeds, out = generated
    again = run(make_step("generate.reasoning", tmp, **PARAMS), seeds)
    assert [s.id for s in again] == [s.id for s in out]
    assert all(s.provenance["cached"] == s.provenance["requests"] for s in again if not s.dropped)
    assert cache_report(tmp / "llm_cache.sqlite")["prompts_sent_twice"] == 0


def test_think_blocks_split_for_instruct_models():
    assert split_think("<think>2 + 2 is 4.</think> The answer is 4.") == ("2 + 2 is 4.", "The answer is 4.")
    assert split_think("no reasoning here") is None


def test_persona_task_prompt_ends_at_the_personas_goal_and_label(tmp_path):
    step = make_step("generate.reasoning", tmp_path, **PARAMS)
    persona = load_bank()[11].model_dump()
    prompt = step._task_request(Sample(kind="seed", persona=persona)).prompt
    assert prompt.endswith(f"Wants to: {persona['goals']}\n### Problem ({persona['occupation']}, {persona['region']})\n")
    plain = step._task_request(Sample(kind="seed", meta={"x": 1})).prompt
    assert plain.endswith("### Problem\n") and "Wants to:" not in plain
