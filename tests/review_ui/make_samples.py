"""Deterministic samples of every reviewable kind, shaped like the generators' output (persona,
provenance, filter verdicts with scores, a judge verdict), for the review tests and bench/review.py."""

from __future__ import annotations

import random

from pipelines.core.sample import Candidate, Message, Sample, ToolCall, Verdict

DOMAINS = ("law", "science", "cooking", "travel", "finance", "health")
WORDS = ("river market garden music coffee bridge winter token answer question reason small fast local "
         "city model data version review export persona").split()
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather forecast for a city.",
    "parameters": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "description": "city name"},
        "days": {"type": "integer", "description": "how many days ahead"},
        "unit": {"type": "string", "enum": ["c", "f"]}}}}}


def _persona(rng: random.Random) -> dict:
    return {"id": f"p{rng.randrange(10**6)}", "domain": rng.choice(DOMAINS), "occupation": "teacher",
            "region": "Lyon, France", "age_band": rng.choice(["18-24", "35-49", "65+"]),
            "expertise": rng.choice(["novice", "expert"]), "goals": "learn", "communication_style": "terse",
            "description": "A teacher from Lyon."}


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def make_sample(kind: str, i: int, seed: int = 0) -> Sample:
    rng = random.Random(f"{kind}-{seed}-{i}")
    judge = rng.random()
    verdicts = [Verdict("length", True, score=float(rng.randrange(20, 400))),
                Verdict("judge", judge > 0.3, "judge_low" if judge <= 0.3 else "", score=round(judge, 3))]
    prov = {"generator": f"generate.{kind}", "model": "embedded-gemma-270m", "step": "gen"}
    user = Message("user", f"[{kind} #{i}] {_words(rng, 8)}?")
    if kind == "chat":
        msgs = [user, Message("assistant", f"Answer {i}: {_words(rng, 14)}."),
                Message("user", f"And {_words(rng, 4)}?"), Message("assistant", f"Then {_words(rng, 10)}.")]
        return Sample("chat", msgs, persona=_persona(rng), provenance=prov, verdicts=verdicts)
    if kind == "reasoning":
        msgs = [user, Message("assistant", f"The answer is {i * 7}.",
                              reasoning=f"We need {i} times 7. {i} * 7 = {i * 7}. {_words(rng, 6)}.")]
        return Sample("reasoning", msgs, persona=_persona(rng), provenance=prov, verdicts=verdicts)
    if kind == "tool_use":
        city = rng.choice(["Paris", "Oslo", "Lima"])
        call = ToolCall("get_weather", {"city": city, "days": 1 + i % 5})
        msgs = [Message("user", f"[tool #{i}] Weather in {city} for {1 + i % 5} days?"),
                Message("assistant", "", tool_calls=[call])]
        if i % 2 == 0:  # even samples end with the answer from the tool result, odd ones with the call
            msgs += [Message("tool", '{"temp": 21, "sky": "clear"}', name="get_weather"),
                     Message("assistant", f"It will be 21 degrees and clear in {city}.")]
        return Sample("tool_use", msgs, tools=[WEATHER_TOOL], persona=_persona(rng), provenance=prov,
                      verdicts=verdicts)
    if kind == "preference":
        cands = [Candidate(Message("assistant", f"Answer B{i}: {_words(rng, 10)}."), {"model": "other"})]
        msgs = [user, Message("assistant", f"Answer A{i}: {_words(rng, 10)}.")]
        return Sample("preference", msgs, candidates=cands, persona=_persona(rng), provenance=prov,
                      verdicts=verdicts)
    raise ValueError(kind)


def make_samples(kind: str, n: int, seed: int = 0) -> list[Sample]:
    return [make_sample(kind, i, seed) for i in range(n)]
