"""Math answers: the final answer of the last assistant turn must equal the reference, by math-verify.

The reference is `sample.meta[reference_key]` (default "reference_answer"); a GSM8K-style worked solution
is accepted too, its final answer being what follows the last "####". math-verify extracts the final
answer from free text (LaTeX, \\boxed{}, plain numbers with thousands separators, currency signs, units)
and compares symbolically, so "1,000", "1000.0", "$1000" and "\\boxed{1000}" all equal 1000.

A sample without a reference is kept with `details.checked = false` (or dropped as "no_reference" when
`require_reference`); an answer with no extractable value is "no_answer"; a different value "wrong_answer"
with both values in the details.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from filters.base import Filter
from pipelines.core.registry import register
from pipelines.core.sample import Sample, Verdict
from pipelines.core.step import Params


class MathAnswerParams(Params):
    reference_key: str = Field("reference_answer", description="meta key holding the reference answer")
    require_reference: bool = Field(False, description="drop samples that have no reference")
    timeout_s: int = Field(5, ge=1, description="math-verify's per-comparison time limit (seconds)")


def reference_text(value: Any) -> str:
    text = str(value)
    return text.rsplit("####", 1)[1].strip() if "####" in text else text.strip()


def _config():
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    # LaTeX first (boxed, $...$), then plain expressions/numbers: the order math-verify recommends.
    return [LatexExtractionConfig(), ExprExtractionConfig()]


def parse_answer(text: str, timeout_s: int = 5) -> list:
    from math_verify import parse

    return parse(text, extraction_config=_config(), parsing_timeout=timeout_s)


def answers_match(reference: str, answer: str, timeout_s: int = 5) -> tuple[bool, list, list]:
    """(equal, parsed reference, parsed answer)."""
    from math_verify import verify

    gold = parse_answer(reference_text(reference), timeout_s)
    got = parse_answer(answer, timeout_s)
    return bool(gold and got and verify(gold, got, timeout_seconds=timeout_s)), gold, got


def _shown(parsed: list) -> str | None:
    # math-verify returns [sympy value, matched text]; the text is what a reviewer wants to see.
    return str(parsed[-1]) if parsed else None


@register("filter.math_answer")
class MathAnswer(Filter):
    Params = MathAnswerParams

    def keep(self, s: Sample) -> Verdict:
        p = self.params
        ref = s.meta.get(p.reference_key)
        if ref is None or str(ref).strip() == "":
            if p.require_reference:
                return self.verdict(False, "no_reference", details={"reference_key": p.reference_key})
            return self.verdict(True, details={"checked": False})
        answer = next((m.content for m in reversed(s.messages) if m.role == "assistant"), "")
        ok, gold, got = answers_match(str(ref), answer, p.timeout_s)
        if not gold:
            raise ValueError(f"sample {s.id}: reference {ref!r} (meta[{p.reference_key!r}]) has no value math-verify can read")
        details = {"checked": True, "expected": _shown(gold), "got": _shown(got)}
        if not got:
            return self.verdict(False, "no_answer", details=details)
        return self.verdict(ok, "" if ok else "wrong_answer", score=1.0 if ok else 0.0, details=details)
