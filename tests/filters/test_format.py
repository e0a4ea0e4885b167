"""filter.format: role order, empty turns, length bounds, reasoning, repetition and language."""

from __future__ import annotations

import pytest

from pipelines.core.sample import Message, Sample, ToolCall
from tests.filters.conftest import make_step
from tests.filters.data import gsm8k

Q = "How many eggs does Janet sell at the market each day if her ducks lay sixteen?"
A = "She eats three and bakes with four, so she sells nine eggs at the market every single day."


@pytest.fixture
def step(tmp_path):
    return make_step("filter.format", tmp_path)


def chat(*turns: tuple[str, str], kind: str = "chat") -> Sample:
    return Sample(kind=kind, messages=[Message(r, c) for r, c in turns])


def reason(step, s: Sample) -> str:
    v = step.keep(s)
    return "ok" if v.keep else v.reason


def test_good_conversations_pass(step):
    assert reason(step, chat(("system", "Be brief."), ("user", Q), ("assistant", A))) == "ok"
    calls = Sample(kind="tool_use", messages=[
        Message("user", Q), Message("assistant", "", tool_calls=[ToolCall("count", {"n": 16})]),
        Message("tool", '{"eggs": 9}'), Message("assistant", A)])
    assert reason(step, calls) == "ok"
    # A conversation may end on the call itself (function-calling data).
    assert reason(step, Sample(kind="tool_use", messages=calls.messages[:2])) == "ok"


@pytest.mark.parametrize("turns", [
    [("assistant", A), ("user", Q)],
    [("user", Q), ("user", Q), ("assistant", A)],
    [("user", Q), ("assistant", A), ("assistant", A)],
    [("user", Q), ("system", "late"), ("assistant", A)],
    [("user", Q), ("tool", "{}"), ("assistant", A)],
    [("user", Q), ("assistant", A), ("user", Q)],
])
def test_role_order(step, turns):
    assert reason(step, chat(*turns)) == "bad_role_order"


def test_empty_short_and_long_turns(tmp_path, step):
    assert reason(step, chat(("user", Q), ("assistant", "  "))) == "empty_turn"
    strict = make_step("filter.format", tmp_path, min_chars=20, max_turn_chars=200, max_total_chars=250)
    assert reason(strict, chat(("user", "Hi"), ("assistant", A))) == "turn_too_short"
    assert reason(strict, chat(("user", Q), ("assistant", A * 3))) == "turn_too_long"
    assert reason(strict, chat(("user", Q), ("assistant", A), ("user", Q), ("assistant", A))) == "too_long"


def test_reasoning_comes_before_the_answer_for_reasoning_kinds(step):
    row = gsm8k("test")[0]
    good = Sample(kind="reasoning", messages=[Message("user", row["question"]),
                                              Message("assistant", "She makes $18.", reasoning="16-3-4=9; 9*2=18")])
    assert reason(step, good) == "ok"
    no_think = Sample(kind="reasoning", messages=[Message("user", row["question"]), Message("assistant", "She makes $18.")])
    assert reason(step, no_think) == "missing_reasoning"
    leaked = Sample(kind="reasoning", messages=[Message("user", row["question"]),
                                                Message("assistant", "<think>9*2</think> $18", reasoning="x")])
    assert reason(step, leaked) == "think_tag_in_content"
    no_answer = Sample(kind="reasoning", messages=[Message("user", row["question"]),
                                                   Message("assistant", "", reasoning="16-3-4=9")])
    assert reason(step, no_answer) == "missing_answer"
    # A chat sample need not think.
    assert reason(step, chat(("user", Q), ("assistant", A))) == "ok"


def test_repetition_and_language(tmp_path, step):
    loop = "I think the answer is nine eggs. " * 12
    v = step.keep(chat(("user", Q), ("assistant", loop)))
    assert not v.keep and v.reason == "repetitive" and v.details["repeated_trigram_share"] > 0.8
    french = chat(("user", "Combien d'oeufs Janet vend-elle chaque jour au marché de la ville ?"),
                  ("assistant", "Elle vend neuf oeufs chaque jour au marché, après en avoir mangé trois et cuisiné quatre."))
    v = step.keep(french)
    assert not v.keep and v.reason == "wrong_language" and v.details["language"] == "fr"
    assert make_step("filter.format", tmp_path, language="fr").keep(french).keep
    assert make_step("filter.format", tmp_path, language=None).keep(french).keep
    assert step.keep(chat(("user", "Hi"), ("assistant", "Hello!"))).details["language"] is None  # too short to tell
