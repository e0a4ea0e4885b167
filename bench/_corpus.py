"""Benchmark corpora built from real data: GSM8K questions with their worked solutions, and generated
multi-turn conversations (persona-bank users asking about their goals, answers stitched from GSM8K
solution sentences), plus near-duplicates made by editing words until a target Jaccard is reached."""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from filters.decontaminate import shared_data_dir  # noqa: E402
from filters.normalize import shingles  # noqa: E402
from pipelines.core.sample import Message, Sample  # noqa: E402

_OPENERS = ("Hi!", "Hello.", "Quick question:", "I need help.", "Hey there.", "Good morning!", "Can you help?")
_FOLLOW = ("Can you explain that step again?", "What if the numbers were doubled?", "Is there a faster way?",
           "How would you check the answer?", "Could you give a similar example?", "Why does that work?")


def gsm8k_rows() -> list[dict]:
    rows = []
    for split in ("train", "test"):
        path = shared_data_dir() / "gsm8k" / f"{split}.jsonl"
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


def personas() -> list[dict]:
    path = ROOT / "personas" / "data" / "bank.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _clean(solution: str) -> str:
    return re.sub(r"<<[^>]*>>", "", solution.split("####")[0]).strip()


def gsm8k_samples(rows: list[dict]) -> list[Sample]:
    return [Sample(kind="chat", messages=[Message("user", r["question"]), Message("assistant", _clean(r["answer"]))],
                   provenance={"generator": "gsm8k"}) for r in rows]


def generated_samples(n: int, rng: random.Random, rows: list[dict], bank: list[dict],
                      generators: tuple[str, ...] = ("synthetic_chat",), with_persona: bool = False) -> list[Sample]:
    sentences = [s.strip() for r in rows for s in _clean(r["answer"]).split("\n") if len(s.split()) >= 5]
    out = []
    for _ in range(n):
        p = rng.choice(bank)
        turns = rng.randint(1, 3)
        messages = [Message("user", f"{rng.choice(_OPENERS)} {p['description']} I want to {p['goals']}.")]
        for t in range(turns):
            if t:
                messages.append(Message("user", rng.choice(_FOLLOW)))
            messages.append(Message("assistant", " ".join(rng.sample(sentences, rng.randint(2, 4)))))
        gen = generators[0] if len(generators) == 1 else rng.choice(generators)
        out.append(Sample(kind="chat", messages=messages, persona=p if with_persona else None,
                          provenance={"generator": gen, "persona_domain": p["domain"]}))
    return out


def near_copy(s: Sample, target: float, rng: random.Random, vocab: list[str], render, n: int = 3) -> tuple[Sample, float]:
    """Edit words of s (replace, delete, insert) until the exact shingle Jaccard of the rendering falls to
    `target` or just below; returns the copy and its exact Jaccard with s."""
    original = shingles(render(s), n)
    msgs = [Message(m.role, m.content) for m in s.messages]
    jac = 1.0
    for _ in range(400):
        if jac <= target:
            break
        i = rng.randrange(len(msgs))
        w = msgs[i].content.split()
        if not w:
            continue
        k = rng.randrange(len(w))
        op = rng.random()
        if op < 0.6:
            w[k] = rng.choice(vocab)
        elif op < 0.8 and len(w) > 3:
            del w[k]
        else:
            w.insert(k, rng.choice(vocab))
        trial = [Message(m.role, " ".join(w) if j == i else m.content) for j, m in enumerate(msgs)]
        copy = Sample(kind=s.kind, messages=trial, provenance={**s.provenance, "near_copy": True})
        sh = shingles(render(copy), n)
        new = len(original & sh) / len(original | sh)
        if new < target - 0.08:  # overshot (a short text): try another edit instead
            continue
        msgs, jac = trial, new
    copy = Sample(kind=s.kind, messages=msgs, provenance={**s.provenance, "near_copy": True})
    return copy, jac


def generated_prompts(n: int, rng: random.Random, rows: list[dict], bank: list[dict]) -> list[Sample]:
    """Single-turn requests: a persona-bank user states who they are and what they want, and asks a
    follow-up; the answer is a couple of GSM8K solution sentences (not what semantic dedup embeds)."""
    sentences = [s.strip() for r in rows for s in _clean(r["answer"]).split("\n") if len(s.split()) >= 5]
    out = []
    for _ in range(n):
        p = rng.choice(bank)
        user = f"{rng.choice(_OPENERS)} {p['description']} I want to {p['goals']}. {rng.choice(_FOLLOW)}"
        out.append(Sample(kind="chat", messages=[Message("user", user), Message("assistant", " ".join(rng.sample(sentences, 2)))],
                          provenance={"generator": "synthetic_prompt", "persona_domain": p["domain"]}))
    return out
