"""filter.math_answer with math-verify on the real GSM8K test split."""

from __future__ import annotations

import pytest

from pipelines.formats.math_answers import answers_match, reference_text
from pipelines.core.sample import Message, Sample
from tests.filters.conftest import make_step
from tests.filters.data import gsm8k


def surface_forms(final: str) -> list[str]:
    value = float(final.replace(",", ""))
    forms = [final, f"{final}.0" if "." not in final else f"{final}0", f"${final}",
             f"The answer is {final}.", f"\\boxed{{{final}}}", f"#### {final}"]
    if value.is_integer() and abs(value) >= 1000:
        forms.append(f"{int(value):,}")  # "1,000"
        forms.append(f"${int(value):,} in total")
    return forms


def wrong_numbers(final: str) -> list[str]:
    value = float(final.replace(",", ""))
    out = [value + 1, value - 0.5]
    if value != 0:
        out.append(value * 10)
    return [str(int(v)) if float(v).is_integer() else str(v) for v in out]


def test_every_gsm8k_reference_matches_itself_in_several_surface_forms_and_not_wrong_numbers():
    rows = gsm8k("test")
    assert len(rows) == 1319
    misses, false_hits, thousands = [], [], 0
    for row in rows:
        final = reference_text(row["answer"])
        for form in surface_forms(final):
            thousands += "," in form
            if not answers_match(row["answer"], form)[0]:
                misses.append((final, form))
        for wrong in wrong_numbers(final):
            if answers_match(row["answer"], wrong)[0]:
                false_hits.append((final, wrong))
    assert not misses, misses[:10]
    assert not false_hits, false_hits[:10]
    assert thousands > 50  # the "1,000" forms were really exercised


@pytest.fixture
def step(tmp_path):
    return make_step("filter.math_answer", tmp_path)


def solved(question: str, reference: str, answer: str, reasoning: str | None = None) -> Sample:
    return Sample(kind="reasoning", meta={"reference_answer": reference},
                  messages=[Message("user", question), Message("assistant", answer, reasoning=reasoning)])


def test_the_step_checks_the_final_assistant_answer(step):
    row = gsm8k("test")[0]  # Janet's ducks: 18
    good = solved(row["question"], row["answer"], "She makes $18 every day.",
                  reasoning="16 - 3 - 4 = 9 eggs are left; 9 * 2 = 18 dollars.")
    v = step.keep(good)
    assert v.keep and v.score == 1.0 and v.details == {"checked": True, "expected": "18", "got": "18"}
    bad = step.keep(solved(row["question"], row["answer"], "She makes $20 every day."))
    assert not bad.keep and bad.reason == "wrong_answer" and bad.details["got"] == "20"
    empty = step.keep(solved(row["question"], row["answer"], "I am not sure."))
    assert not empty.keep and empty.reason == "no_answer"


def test_missing_reference_is_kept_unchecked_or_dropped_when_required(tmp_path, step):
    s = Sample(kind="chat", messages=[Message("user", "hi"), Message("assistant", "hello")])
    v = step.keep(s)
    assert v.keep and v.details == {"checked": False}
    strict = make_step("filter.math_answer", tmp_path, require_reference=True)
    assert strict.keep(s).reason == "no_reference"


def test_unreadable_reference_is_an_error_not_a_silent_pass(step):
    with pytest.raises(ValueError, match="no value math-verify can read"):
        step.keep(solved("q", "#### (none)", "42"))


def test_a_right_answer_reached_by_wrong_arithmetic_is_dropped_with_the_slip(tmp_path, step):
    row = gsm8k("test")[0]  # Janet's ducks: 18
    slipped = solved(row["question"], row["answer"], "She makes $18 every day.",
                     reasoning="16 - 3 - 4 = 8 eggs are left; 9 * 2 = 18 dollars.")
    v = step.keep(slipped)
    assert not v.keep and v.reason == "arithmetic_slip"
    assert v.details["slips"] == [{"step": "16 - 3 - 4 = 8", "stated": 8.0, "value": 9}]
    # Checked without a reference too, and switched off on request.
    unreferenced = Sample(kind="reasoning", messages=[Message("user", "q"), Message("assistant", "So 2 + 2 = 5.")])
    assert step.keep(unreferenced).reason == "arithmetic_slip"
    lenient = make_step("filter.math_answer", tmp_path, check_working=False)
    assert lenient.keep(slipped).keep
