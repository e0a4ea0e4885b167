"""generate.problem_variants: GSM8K problems set in a persona's world with the numbers (and so the reference
answer) untouched. The swaps are applied in code; the teacher only lists them (real 1.5B teacher below)."""

from __future__ import annotations

import pytest

from pipelines.core.registry import get_component
from pipelines.core.sample import Sample
from pipelines.core.step import StepContext
from pipelines.generators.problem_variants import apply_swaps, number_problem, numbers
from pipelines.llm.client import LLMConfig

PROBLEM = ("Barry goes to a shop to buy a shirt he'd been admiring. She gives him a 15% discount. The price tag "
           "on the shirt says $80, and he buys three of them for his friends. How much does he pay?")


def swap(pairs):
    return [{"from": a, "to": b} for a, b in pairs]


def test_numbers_reads_digits_separators_and_number_words():
    assert numbers("three jars at $1,200.50 each, twice a week, 1/4 of them, 7 days") == \
        {3: 1, 1200.5: 1, 2: 1, 1: 1, 4: 1, 7: 1}
    assert number_problem("5 apples and two pears", "five apples and 2 pears") is None
    assert number_problem("5 apples", "6 apples") == {"missing": [5], "added": [6]}


def test_swaps_change_names_and_things_but_never_a_number():
    text, used = apply_swaps(PROBLEM, swap([("Barry", "Ingrid"), ("shirt", "oilskin jacket"), ("shop", "chandlery"),
                                            ("15%", "20%"), ("three", "four"), ("friends", "crew mates")]))
    assert text.startswith("Ingrid goes to a chandlery to buy an oilskin jacket")
    assert "15% discount" in text and "$80" in text and "three of them for his crew mates" in text
    assert [u["from"] for u in used] == ["Barry", "shirt", "shop", "friends"]
    assert number_problem(PROBLEM, text) is None


def test_swaps_that_are_not_swaps_are_skipped():
    _, used = apply_swaps(PROBLEM, swap([
        ("Barry", "The developer"),       # a name becomes a description: "The developer goes ..." mid-text
        ("shirt", "shirt collar"),        # keeps its own word: an expansion, not a swap
        ("friends", "team"),              # a plural for a singular
        ("Gilbert", "Ola"),               # not in the problem
        ("shop", "price tag"),            # names something the problem already has
        ("price tag", "label"),           # fine
    ]))
    assert used == [{"from": "price tag", "to": "label"}]


def test_swaps_are_whole_words_and_one_pass():
    text, used = apply_swaps("A cat and a category: the cat sat.", swap([("cat", "dog"), ("dog", "fox")]))
    assert text == "A dog and a category: the dog sat."
    assert used == [{"from": "cat", "to": "dog"}]  # "dog" is not in the text, and swaps never chain


def test_a_base_teacher_and_a_seed_without_a_reference_are_refused(tmp_path):
    cls = get_component("generate.problem_variants")
    seed = Sample(kind="seed", meta={"task": PROBLEM, "reference_answer": "204"})
    base = cls(cls.Params(), StepContext("v", "t", "fp", tmp_path,
                                          llm_config=LLMConfig(model="embedded-gemma-270m").model_dump()))
    with pytest.raises(ValueError, match="needs an instruct teacher"):
        list(base.run(iter([seed])))
    chat = cls(cls.Params(), StepContext("v", "t", "fp", tmp_path, llm_config=LLMConfig().model_dump()))
    with pytest.raises(ValueError, match="meta.reference_answer"):
        list(chat.run(iter([Sample(kind="seed", meta={"task": PROBLEM})])))


def test_variants_on_the_1_5b_teacher_keep_every_number_and_the_reference(tmp_path):
    cfg = LLMConfig(model="embedded-qwen-1.5b", n_threads=2, seed=0, temperature=0.8).model_dump()

    def make(name, **params):
        cls = get_component(name)
        return cls(cls.Params(**params), StepContext(name, "test", "fp", tmp_path, llm_config=cfg))

    seeds = list(make("seeds.gsm8k", limit=6, shuffle_seed=0).run(iter([])))
    seeds = list(make("personas.assign", n=6, seed=0).run(iter(seeds)))
    step = make("generate.problem_variants")
    try:
        out = list(step.run(iter(seeds)))
    finally:
        step.ctx.close()
    assert len(out) == 6
    kept = [s for s in out if not s.dropped]
    for s in out:
        if s.dropped:
            assert s.verdicts[-1].reason in {"too_few_swaps", "numbers_changed", "placeholder", "letter_format",
                                             "structured_output_invalid"}, s.verdicts[-1].reason
    assert kept, [s.verdicts[-1].reason for s in out]
    originals = {s.meta["task"]: s for s in seeds}
    for s in kept:
        seed = originals[s.meta["original_task"]]
        assert s.meta["task"] != seed.meta["task"] and len(s.meta["swaps"]) >= 2
        assert numbers(s.meta["task"]) == numbers(seed.meta["task"])
        assert s.meta["reference_answer"] == seed.meta["reference_answer"] and s.persona == seed.persona
        assert s.provenance["generator"] == "generate.problem_variants"
