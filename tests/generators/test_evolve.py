"""generate.evolve on the real embedded model: evolved instructions with their operation history, seeds
from files or from personas, eliminations as verdicts, and answer: false emitting seeds."""

import json

import pytest

from personas.bank import load_bank
from pipelines.core.sample import Sample
from pipelines.generators.evolve import OPERATIONS, EvolveParams
from pipelines.generators.turn_checks import VOICE_REASONS
from tests.generators.helpers import assert_provenance, make_step, run

PARAMS = dict(n_examples=2, max_instruction_tokens=40, max_answer_tokens=32)
DROP_REASONS = {"evolution_unchanged", "evolution_too_short", "copied_example", "empty_seed", "empty_evolve",
                "empty_answer", "not_a_request", "off_goal", *VOICE_REASONS}  # chat: instructions checked as user messages


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evolve")
    seed_file = tmp / "seeds.jsonl"
    seed_file.write_text(json.dumps({"prompt": "How do I keep basil alive on a windowsill?"}) + "\n")
    from_file = run(make_step("seeds.jsonl", tmp, llm=False, path=str(seed_file), prompt_field="prompt"), [])
    seeds = from_file + [Sample(kind="seed", persona=load_bank()[21].model_dump())]
    return seeds, run(make_step("generate.evolve", tmp, **PARAMS), seeds)


def test_evolved_instructions_carry_their_history(generated):
    seeds, out = generated
    assert len(out) == 2
    kept = [s for s in out if not s.dropped]
    assert kept, [s.verdicts[-1].to_dict() for s in out]
    for s in kept:
        assert s.kind == "chat" and [m.role for m in s.messages] == ["user", "assistant"]
        assert all(m.content.strip() for m in s.messages)
        [step] = s.meta["evolution"]
        assert step["operation"] in OPERATIONS and step["before"] != step["after"]
        assert step["after"] == s.messages[0].content and step["before"] == s.meta["seed_instruction"]
        assert s.provenance["operations"] == [step["operation"]]
        assert_provenance(s, "generate.evolve", "evolve/fewshot.jinja")
    for s in out:
        if s.dropped:
            assert s.verdicts[-1].reason in DROP_REASONS


def test_seed_sources(generated):
    seeds, out = generated
    file_seed, persona_seed = out
    if not file_seed.dropped:
        assert file_seed.meta["seed_instruction"] == "How do I keep basil alive on a windowsill?"
        assert file_seed.provenance["seed_source"] == "meta.task"
    if not persona_seed.dropped:
        assert persona_seed.provenance["seed_source"] == "persona"
        assert persona_seed.provenance["persona_id"] == seeds[1].persona["id"]


def test_unknown_operation_is_a_parameter_error():
    with pytest.raises(ValueError, match="operations"):
        EvolveParams(operations=["deepen", "shorten"])


def test_chat_template_and_seed_output(tmp_path):
    seed = Sample(kind="seed", meta={"task": "Explain how a bicycle gear works."})
    [s] = run(make_step("generate.evolve", tmp_path, template="chat", answer=False, operations=["constraints"],
                        max_instruction_tokens=40), [seed])
    if s.dropped:
        assert s.verdicts[-1].reason in DROP_REASONS
    else:  # answer: false hands the evolved instruction on as a seed task
        assert s.kind == "seed" and not s.messages and s.meta["task"] == s.meta["evolution"][0]["after"]
        assert s.provenance["template"] == "evolve/chat_evolve.jinja" and s.provenance["operations"] == ["constraints"]
