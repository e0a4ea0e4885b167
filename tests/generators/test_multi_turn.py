"""generate.multi_turn on the real embedded model: persona-driven, alternating, non-empty, traced."""

import pytest

from personas.bank import load_bank
from pipelines.core.sample import Sample
from pipelines.core.step import StepContext
from pipelines.generators.multi_turn import MultiTurn, MultiTurnParams
from pipelines.generators.templates import examples
from pipelines.llm.cache import cache_report
from pipelines.llm.client import LLMConfig

# The few-shot (base-model) strategy is what these tests exercise; the instruct default has its own tests.
BASE_MODEL = "embedded-gemma-270m"


DROP_REASONS = {"empty_user_turn", "empty_assistant_turn", "repeated_user_turn", "role_confusion",
                "echoed_user_turn", "repeated_assistant_turn", "copied_example"}


def seeds(n: int) -> list[Sample]:
    return [Sample(kind="seed", persona=p.model_dump()) for p in load_bank()[:n]]


def make_step(tmp_path, **params) -> MultiTurn:
    ctx = StepContext("chat", "test", "fp", tmp_path, llm_config=LLMConfig(model=BASE_MODEL, n_threads=1, seed=3).model_dump())
    return MultiTurn(MultiTurnParams(**params), ctx)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mt")
    step = make_step(tmp, turns=2, max_user_tokens=32, max_assistant_tokens=40)
    out = list(step.run(iter(seeds(3))))
    step.ctx.close()
    return tmp, out


def test_conversations_alternate_and_are_persona_driven(generated):
    _, out = generated
    kept = [s for s in out if not s.dropped]
    assert len(out) == 3 and kept
    for s in kept:
        assert s.kind == "chat"
        assert [m.role for m in s.messages] == ["user", "assistant"] * 2
        assert all(m.content.strip() for m in s.messages)
        # A turn never swallows the next speaker's line: the stop strings ended it.
        assert not any("\nUser:" in m.content or "\nAssistant:" in m.content for m in s.messages)
        p = s.provenance
        assert p["generator"] == "generate.multi_turn" and p["persona_id"] == s.persona["id"]
        assert p["template"] == "multi_turn/fewshot.jinja" and len(p["template_hash"]) == 12
        assert p["model"].startswith("llama_cpp:gemma-3-270m") and p["backend"] == "llama_cpp"
        # 4 turns, plus one more request for each turn that was asked again (a copy or an empty turn).
        assert 4 <= p["requests"] <= 8 and p["tokens_in"] > 200 and p["tokens_out"] > 0 and p["latency_s"] > 0
        for i, m in enumerate(s.messages):  # no turn repeats an earlier one
            assert all(m.content != e.content for e in s.messages[:i])
    for s in out:
        if s.dropped:  # an empty or copied turn is a drop with a reason, never a kept message
            v = s.verdicts[-1]
            assert v.reason in DROP_REASONS and v.details["attempts"] == 2


def test_rerun_is_answered_from_cache_with_identical_samples(generated):
    tmp, out = generated
    step = make_step(tmp, turns=2, max_user_tokens=32, max_assistant_tokens=40)
    again = list(step.run(iter(seeds(3))))
    step.ctx.close()
    assert [s.id for s in again] == [s.id for s in out]
    assert all(s.provenance.get("cached") == s.provenance["requests"] for s in again if not s.dropped)
    assert cache_report(tmp / "llm_cache.sqlite")["prompts_sent_twice"] == 0


def test_fewshot_prompt_labels_persona_turns_and_leaves_plain_ones_unlabelled(tmp_path):
    step = make_step(tmp_path, turns=1)
    [persona_seed] = seeds(1)
    p = persona_seed.persona
    shots = examples("multi_turn/examples.yaml")[:2]
    labelled = step._request("user", 0, persona_seed, shots, []).prompt
    assert labelled.endswith(f"Wants to: {p['goals']}\nUser ({p['occupation']}, {p['region']}):")
    assert f"User ({shots[0]['who']}):" in labelled  # the examples show the same labels
    plain = step._request("user", 0, Sample(kind="seed"), shots, []).prompt
    assert plain.endswith("User:") and "User (" not in plain and "Wants to:" not in plain
