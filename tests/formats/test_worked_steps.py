"""worked_steps: the written arithmetic of a solution is recomputed, and only arithmetic is read."""

from __future__ import annotations

from pipelines.formats.math_answers import reference_text
from pipelines.formats.worked_steps import slips
from tests.filters.data import gsm8k


def stated(text: str) -> list[float]:
    return [s["stated"] for s in slips(text)]


def test_a_wrong_product_is_found_even_when_the_final_answer_is_right():
    # The shape read on the quickstart: two wrong steps, a right total.
    working = "Five books at $10 each: 5 * 10 = $50.\nThe online books: 2 × 40 = 90.\nTotal: 50 + 90 + 70 = 210"
    assert slips(working) == [{"step": "2 * 40 = 90", "stated": 90.0, "value": 80}]
    assert stated("48 + 24 = 72\n72 / 2 = 36") == []


def test_the_forms_the_teacher_writes_are_read():
    assert stated(r"\( 3 \times 40 = 130 \)") == [130.0]
    assert stated(r"\[ \frac{48}{2} = 25 \]") == [25.0]
    assert stated(r"$12 \div 4 = 4$") == [4.0]
    assert stated("1,250 + 250 = 1,400 dollars") == [1400.0]
    assert stated("5x10 = 60") == [60.0]
    assert stated("(1/2) x 2 x 2 = 3") == [3.0]
    assert stated("3 * 40 = 120 + 50 = 180") == [180.0]  # a running chain: each link is checked
    assert stated("2^3 = 8, and 2 ** 4 = 15") == [15.0]


def test_rounding_to_the_digits_shown_and_identities_are_right():
    assert stated("10 / 3 = 3.33") == []
    assert stated("10 / 3 = 3.3") == []
    assert stated("10 / 3 = 3.4") == [3.4]
    assert stated("12 - 2 = 2 * 5") == []
    assert stated("3 * 40 = 120 + 50 = 170") == []


def test_algebra_units_times_and_labels_are_not_read_as_arithmetic():
    assert stated("M + 4 + 2 = 8 hours") == []            # a variable before the numbers
    assert stated("100 = 5A, so 100/5 = 5A/5") == []       # and after
    assert stated("26=5+3x\n21=3x") == []
    assert stated("4/5 * 1/4 = 1/5 = 20%") == []           # a percentage, not 20
    assert stated("The sun sets at 6:00+48 = 6:48 PM") == []
    assert stated("60 students x 2/3 = 40 students") == []  # "x" after a word: not 2/3 alone
    assert stated("- 5 * 3 = 15\n2. 4 * 4 = 16") == []     # list markers are not signs or numbers
    assert stated("21 x (1 and 1/3) = 28") == []           # a mixed number
    assert stated("5 apples + 3 apples = 8 apples") == []   # words between the numbers
    assert stated("about 10 / 3 ≈ 3") == []


def test_gsm8k_reference_solutions_are_almost_never_flagged():
    # GSM8K's own solutions hold a few real slips ("192*100=$1920"): a bound of 0.5%, not zero.
    rows = gsm8k("train")
    flagged = [r for r in rows if slips(r["answer"].rsplit("####", 1)[0])]
    assert len(rows) > 7000
    assert len(flagged) <= len(rows) // 200, [reference_text(r["answer"]) for r in flagged[:5]]
    assert any("192*100=$1920" in r["answer"] for r in flagged)
