"""`generate.problem_variants`: seed problems (GSM8K) retold in a persona's world, with the same numbers
and the same reference answer, so reasoning data gets the personas' diversity and keeps its verifier.

Input: samples with `meta.task` and `meta.reference_answer` (`seeds.gsm8k`, `seeds.jsonl`) and a persona
(`personas.assign` deals the bank's personas out over them). The teacher does not retell the problem: asked
to, the 0.5B teacher kept the numbers in 1 of 8 probes (it solved the problem instead, dropped a clause, or
copied it). It lists swaps instead, under a JSON schema (`prompts/problem_variants/chat_rewrite.jinja`):
the problem's names, places, objects and activities, each with its counterpart in the persona's world
("Barry" -> "Ingrid", "shirt" -> "oilskin jacket"), and the swaps are applied here, whole words only, so
the numbers and the way they relate stay as they were. `candidates` swap lists are sampled; the first whose
result passes the checks replaces `meta.task`, and the original stays in `meta.original_task`.

Checks, each a named drop reason when no candidate passes:
- too_few_swaps: fewer than `min_swaps` swaps could be applied (a "from" not found in the problem, or a
  swap that would touch a number, is not applied);
- numbers_changed: the result's numbers (digits and number words, "three" = 3, "twice" = 2) are not the
  same multiset as the original's (a swap brought one in);
- the user-message checks of `turn_checks.voice_problem` (placeholders such as "[Name]", ...).
The reasoning step's rejection sampling is the second gate: a variant whose swaps broke the problem has no
attempt that verifies against the reference, and is dropped as no_verified_attempt.

Base models (template fewshot) cannot retell under instructions; the step refuses them with one error.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from typing import Any

from pydantic import Field

from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params
from pipelines.generators import calls
from pipelines.generators.batch_step import BatchGenerator
from pipelines.generators.calls import Usage, drop, request_drop, run_batch, sampling
from pipelines.generators.templates import render, template_hash
from pipelines.generators.turn_checks import voice_problem
from pipelines.llm.client import Request
from pipelines.llm.errors import RequestError
from pipelines.llm.prompt_style import prompt_style

GENERATOR = "generate.problem_variants"
_TEMPLATE = "problem_variants/chat_rewrite.jinja"
_PHRASE = {"type": "string", "minLength": 2}
_SCHEMA = {"type": "object", "properties": {"replacements": {
    "type": "array", "minItems": 1, "maxItems": 8, "items": {
        "type": "object", "properties": {"from": _PHRASE, "to": _PHRASE}, "required": ["from", "to"],
        "additionalProperties": False}}}, "required": ["replacements"], "additionalProperties": False}
_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?|\b[a-z]+\b")
_WORD = re.compile(r"[^\W\d_]+")
_GLUE = {"a", "an", "the", "of", "and", "in", "on", "at", "to", "for", "with", "his", "her", "their", "my"}
_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
               "hundred": 100, "thousand": 1000, "dozen": 12, "twice": 2, "double": 2, "triple": 3,
               "thrice": 3, "half": 0.5, "quarter": 0.25})


def numbers(text: str) -> Counter:
    """The numbers a word problem states: digits ("1,200", "3.5") and number words, as values."""
    found: Counter = Counter()
    for token in _NUMBER.findall(text.lower()):
        if token[0].isdigit():
            value = float(token.replace(",", ""))
            found[int(value) if value.is_integer() else value] += 1
        elif token in _WORDS:
            found[_WORDS[token]] += 1
    return found


def apply_swaps(text: str, swaps: list[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    """The text with each swap's "from" replaced by its "to" (whole words, case kept as given, one pass so
    a swap never rewrites another's output), and the swaps applied. A swap is skipped when its "from" is not
    in the text, either side states a number, its "from" repeats an earlier swap's, or it is no swap at all:
    its "to" keeps a word of its "from" ("gravel" -> "gravel bags", seen from the 0.5B teacher) or names
    something the problem already has ("cousin" -> "family" in a problem about a family gathering)."""
    usable: dict[str, str] = {}
    words = set(_WORD.findall(text.casefold()))
    for swap in swaps:
        old, new = swap["from"].strip().strip("\"'"), swap["to"].strip().strip("\"'")
        if not old or not new or old in usable or numbers(old) or numbers(new):
            continue
        new_words = set(_WORD.findall(new.casefold())) - _GLUE
        if not new_words or new_words & (set(_WORD.findall(old.casefold())) | words):
            continue
        new = _fit(old, new)
        if new is None:
            continue
        if re.search(rf"(?<!\w){re.escape(old)}(?!\w)", text):
            usable[old] = new
    if not usable:
        return text, []
    # An "a"/"an" right before a swapped word follows the new word ("a jar" -> "an urn"); others stay.
    olds = "|".join(re.escape(o) for o in sorted(usable, key=len, reverse=True))
    pattern = re.compile(rf"(?:\b(an?|An?) )?(?<!\w)({olds})(?!\w)")

    def swap_one(m: re.Match) -> str:
        new = usable[m.group(2)]
        if m.group(1) is None:
            return new
        article = "an" if new[0].lower() in "aeiou" else "a"
        return f"{article.capitalize() if m.group(1)[0] == 'A' else article} {new}"

    swapped = pattern.sub(swap_one, text)
    return swapped, [{"from": o, "to": n} for o, n in usable.items()]


def _fit(old: str, new: str) -> str | None:
    """`new` in `old`'s grammatical slot, or None when it cannot take it. Seen from the teachers: a name
    swapped for a description ("Thomas" -> "The developer", read mid-sentence as "The developer and his 4
    friends"), an article doubled ("a rabbit" -> "a the pet"), a plural swapped for a singular ("friends" ->
    "team")."""
    article = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)
    if not article.match(old):
        new = article.sub("", new)
    if not new:
        return None
    if old[0].isupper() != new[0].isupper():
        return None  # a name for a name, a common noun for a common noun
    plural = [w.endswith("s") and not w.endswith("ss") for w in (old.split()[-1].lower(), new.split()[-1].lower())]
    return new if plural[0] == plural[1] else None


def number_problem(original: str, retold: str) -> dict[str, Any] | None:
    """None when both state the same numbers, else what went missing and what was added."""
    a, b = numbers(original), numbers(retold)
    if a == b:
        return None
    return {"missing": sorted((a - b).elements(), key=str), "added": sorted((b - a).elements(), key=str)}


class ProblemVariantsParams(Params):
    candidates: int = Field(2, ge=1, le=8, description="swap lists sampled per problem; the first whose result "
                                                         "passes the checks is kept (best of n)")
    min_swaps: int = Field(2, ge=1, description="swaps a variant needs to count as set in the persona's world")
    max_swap_tokens: int = Field(160, ge=32)
    batch_size: int = Field(8, ge=1)


@register(GENERATOR)
class ProblemVariants(BatchGenerator):
    Params = ProblemVariantsParams
    prompt_folders = ("problem_variants",)

    def _batch(self, batch: list[Sample]) -> list[Sample]:
        if prompt_style("auto", self.ctx.llm_config) == "fewshot":
            raise ValueError(f"{GENERATOR} needs an instruct teacher (chat prompts); "
                             f"{self.ctx.llm_config.get('model')} is a base model")
        for s in batch:
            if not s.meta.get("task") or s.meta.get("reference_answer") is None:
                raise ValueError(f"sample {s.id}: {GENERATOR} retells seed problems: it needs meta.task and "
                                 "meta.reference_answer (from seeds.gsm8k or seeds.jsonl)")
        requests = [self._request(s) for s in batch]
        out = []
        for s, result in zip(batch, run_batch(self.ctx, requests)):
            usage = Usage()
            usage.add(result)
            if isinstance(result, RequestError):
                out.append(request_drop(s, self.ctx, result, "rewrite"))
                continue
            tries = [apply_swaps(s.meta["task"], (c.parsed or {}).get("replacements", [])) for c in result]
            found = [(text, swaps, self._problem(s, text, swaps)) for text, swaps in tries]
            picked = next((i for i, (_, _, problem) in enumerate(found) if problem is None), None)
            if picked is None:
                reason, details = found[0][2]
                out.append(drop(s, self.ctx, reason, variant=found[0][0], swaps=found[0][1], **details,
                                candidates=[{"swaps": w, "reason": p[0]} for _, w, p in found]))
                continue
            text, swaps, _ = found[picked]
            prov = calls.provenance(s, self.ctx, GENERATOR, _TEMPLATE, template_hash(_TEMPLATE), usage,
                                    candidates_picked=picked)
            meta = {**s.meta, "task": text, "original_task": s.meta["task"], "swaps": swaps}
            out.append(replace(s, meta=meta, provenance=prov))
        return out

    def _request(self, s: Sample) -> Request:
        p = self.params
        text = render(_TEMPLATE, persona_description=calls.persona_text(s) or calls.DEFAULT_PERSONA,
                      problem=s.meta["task"])
        smp = sampling(self.ctx.llm_config, p.max_swap_tokens, (), s.id, "swaps")
        return Request(smp, messages=({"role": "user", "content": text},), json_schema=_SCHEMA, n=p.candidates)

    def _problem(self, s: Sample, text: str, swaps: list) -> tuple[str, dict[str, Any]] | None:
        if len(swaps) < self.params.min_swaps:
            return "too_few_swaps", {"applied": len(swaps)}
        if (changed := number_problem(s.meta["task"], text)) is not None:
            return "numbers_changed", changed
        if (voice := voice_problem("user", text)) is not None:
            return voice, {}
        return None
