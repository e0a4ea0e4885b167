"""Math answers: the final answer of the last assistant turn must equal the reference, by math-verify.

The reference is `sample.meta[reference_key]` (default "reference_answer"); a GSM8K-style worked solution
is accepted too, its final answer being what follows the last "####". The comparison is
`pipelines.formats.math_answers` (math-verify), the one the reasoning generator's rejection sampling uses.

A sample without a reference is kept with `details.checked = false` (or dropped as "no_reference" when
`require_reference`); an answer with no extractable value is "no_answer"; a different value "wrong_answer"
with both values in the details. With `check_working` (default) a right answer whose written arithmetic is
wrong ("2 * 40 = 90" on the way to it, `pipelines.formats.worked_steps`) is dropped as "arithmetic_slip",
the slips in the details: the check runs on the turn's reasoning and its content, reference or not.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from filters.base import Filter
from pipelines.core.registry import register
from pipelines.core.sample import Sample, Verdict
from pipelines.core.step import Params
from pipelines.formats import math_answers, worked_steps
from pipelines.formats.math_answers import answers_match


class MathAnswerParams(Params):
    reference_key: str = Field("reference_answer", description="meta key holding the reference answer")
    require_reference: bool = Field(False, description="drop samples that have no reference")
    timeout_s: int = Field(5, ge=1, description="math-verify's per-comparison time limit (seconds)")
    check_working: bool = Field(True, description="drop a sample whose written arithmetic is wrong (arithmetic_slip)")


def _shown(parsed: list) -> str | None:
    # math-verify returns [sympy value, matched text]; the text is what a reviewer wants to see.
    return str(parsed[-1]) if parsed else None


@register("filter.math_answer")
class MathAnswer(Filter):
    Params = MathAnswerParams

    @classmethod
    def fingerprint_files(cls) -> list[Path]:
        return [Path(math_answers.__file__), Path(worked_steps.__file__)]

    def keep(self, s: Sample) -> Verdict:
        p = self.params
        turn = next((m for m in reversed(s.messages) if m.role == "assistant"), None)
        slips = worked_steps.slips(f"{turn.reasoning or ''}\n{turn.content}") if turn and p.check_working else []
        if slips:
            return self.verdict(False, "arithmetic_slip", score=0.0, details={"slips": slips})
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
