"""Plumbing shared by the generation processes: batched model calls, per-sample usage, provenance, drops.

Generators work stage by stage over a batch of samples: every live sample's request for a stage goes to
the client together (`run_batch`), so a server or vLLM backend can answer them concurrently, and the
embedded model simply answers them in turn. A per-request failure (`RequestError`, e.g. JSON that does
not match its schema) comes back in place of that request's completions and becomes a drop Verdict that
keeps the raw text; it never becomes a silent None.

Seeds come from `derive_seed(recipe_seed, sample.id, stage, ...)`: from content, never from position.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from pipelines.core.sample import Sample, Verdict
from pipelines.core.step import StepContext
from pipelines.generators.templates import derive_seed
from pipelines.llm.client import Completion, Request, Sampling
from pipelines.llm.errors import RequestError, drop_reason

# This file's source is part of every generator's fingerprint (see `fingerprint_files` in each module).
HERE = Path(__file__)
_SENTENCE_END = re.compile(r"[.!?)\"'](?=\s|$)")
DEFAULT_PERSONA = "A curious person with everyday questions."


def batches(samples: Iterable[Sample], size: int) -> Iterator[list[Sample]]:
    it = iter(samples)
    while chunk := list(islice(it, size)):
        yield chunk


def tidy(text: str, truncated: bool) -> str:
    """Strip the text; when the model ran out of tokens mid-sentence, keep whole sentences only."""
    text = text.strip()
    if truncated:
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        if ends:
            text = text[: ends[-1]]
    return text.strip()


_WORD = re.compile(r"\w+")
# Words too common to show that a question is about a passage.
_STOPWORDS = frozenset(
    "the a an and or of to in on at for with by from is are was were be been it its this that these those "
    "what which who whom whose when where why how do does did can could should would will my your our their "
    "i you we they he she me us them about into than then there here as if not no yes so any some".split())


def normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.casefold()))


def _grams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def copies_example(text: str, shown: Iterable[str], threshold: float = 0.9, run: int = 8) -> bool:
    """True when `text` is (nearly) one of the few-shot texts the model was shown, or pastes a run of `run`
    words from one: a base model sometimes continues the pattern by repeating an example."""
    words = normalise(text).split()
    norm, grams = " ".join(words), _grams(words, run)
    for ex in shown:
        ex_words = normalise(ex).split()
        if difflib.SequenceMatcher(None, norm, " ".join(ex_words)).ratio() >= threshold or grams & _grams(ex_words, run):
            return True
    return False


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.casefold()) if len(w) > 2 and w not in _STOPWORDS}


def off_goal(text: str, goal: str | None) -> bool:
    """Does an opening message that was asked to be about the persona's goal share no content word with it
    (first five letters, so "prices" meets "price")? Read from the 0.5B teacher: a cyclist recovering from
    a broken collarbone opened with "What are the current car models and the nearest amusement park?"."""
    if not goal:
        return False
    stems = {w[:5] for w in content_words(goal)}
    return not stems & {w[:5] for w in content_words(text)}


def sampling(cfg: dict[str, Any], max_tokens: int, stop: Sequence[str], *seed_parts: Any,
             temperature: float | None = None) -> Sampling:
    """Sampling for one request: the recipe's temperature/top_p, a seed derived from `seed_parts`."""
    return Sampling(
        temperature=cfg["temperature"] if temperature is None else temperature,
        top_p=cfg["top_p"],
        max_tokens=max_tokens,
        stop=tuple(stop),
        seed=derive_seed(cfg["seed"], *seed_parts),
    )


def run_batch(ctx: StepContext, requests: Sequence[Request]) -> list[list[Completion] | RequestError]:
    """Each request's completions, or its RequestError; model-level failures (LLMUnavailable) raise."""
    if not requests:
        return []
    llm = ctx.llm
    generate = getattr(llm, "generate", None)
    if generate is not None:
        return list(generate(list(requests)))
    # Clients without the batch API: one request at a time, with the same error contract.
    results: list[list[Completion] | RequestError] = []
    for r in requests:
        try:
            if r.prompt is not None:
                results.append(llm.complete(r.prompt, sampling=r.sampling, n=r.n, json_schema=r.json_schema))
            else:
                results.append(llm.chat(list(r.messages or ()), sampling=r.sampling, n=r.n,
                                        json_schema=r.json_schema))
        except RequestError as exc:
            results.append(exc)
    return results


@dataclass
class Usage:
    """What one sample cost: summed over every request made for it."""

    requests: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    cached: int = 0

    def add(self, result: list[Completion] | RequestError) -> None:
        self.requests += 1
        if isinstance(result, RequestError):
            self.tokens_in += result.tokens_in
            self.tokens_out += result.tokens_out
            return
        for c in result:
            self.tokens_in += c.tokens_in
            self.tokens_out += c.tokens_out
            self.latency_s += c.latency_s
        self.cached += int(all(c.cached for c in result))

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
                "latency_s": round(self.latency_s, 4), "cached": self.cached}


def persona_text(sample: Sample) -> str | None:
    return (sample.persona or {}).get("description")


def persona_traits(sample: Sample) -> str:
    """The persona's description without its goal: the words a simulated user must not paste into its
    message ("is new to the topic and dictates messages by voice"). Stating the goal is what a user does
    ("How do I build a glossary of legal terms in two languages?"), so it is cut out before the check."""
    text, goal = persona_text(sample) or "", persona_goal(sample)
    return text.replace(goal, " ... ") if goal else text


def persona_label(sample: Sample) -> str | None:
    """"occupation, region" for a speaker label, or None when the persona lacks either (external sets)."""
    p = sample.persona or {}
    who = ", ".join(str(p[k]).strip() for k in ("occupation", "region") if p.get(k))
    return who or None


def persona_goal(sample: Sample) -> str | None:
    return (sample.persona or {}).get("goals") or None


def provenance(seed: Sample, ctx: StepContext, generator: str, template: str, template_hash: str,
               usage: Usage, **extra: Any) -> dict[str, Any]:
    """The provenance every generated sample carries: process, template and hash, persona, model, cost."""
    cfg = ctx.llm_config or {}
    return {
        **seed.provenance,
        "step": ctx.step_name,
        "generator": generator,
        "template": template,
        "template_hash": template_hash,
        "persona_id": (seed.persona or {}).get("id"),
        "model": ctx.llm.model_id,
        "backend": cfg.get("backend"),
        "sampling": {"temperature": cfg.get("temperature"), "top_p": cfg.get("top_p"), "seed": cfg.get("seed")},
        **extra,
        **usage.as_dict(),
    }


def request_drop(sample: Sample, ctx: StepContext, exc: RequestError, stage: str) -> Sample:
    """A drop for a request the model could not answer usefully; the raw text stays in the details."""
    return sample.with_verdict(Verdict(
        ctx.step_name, False, drop_reason(exc),
        details={"stage": stage, "error": exc.reason, "raw": exc.text[:4000]},
    ))


def drop(sample: Sample, ctx: StepContext, reason: str, **details: Any) -> Sample:
    return sample.with_verdict(Verdict(ctx.step_name, False, reason, details=details))
