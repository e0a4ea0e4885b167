"""The functional eval suites: what each item asks, and what a right answer is.

- `bfcl_simple`, `bfcl_multiple`, `bfcl_parallel`, `bfcl_parallel_multiple`: BFCL v4 questions whose every
  offered function is eval-only (`pipelines.tools.catalog.bfcl_held_out`; the generators' BFCL catalog
  leaves those functions out), graded by `ast_checker`.
- `irrelevance`: a held-out simple question offered another held-out question's function that shares no
  content word with it (name, description and parameter names against the question); right is no call.
  BFCL's own irrelevance set is not in ../shared/data, so it is built this way, deterministically.
- `gsm8k`: GSM8K test problems; right is a final answer math-verify finds equal to the reference.

Items are drawn in a fixed shuffled order (seeded), so `--limit N` takes the same N items every time and a
smaller eval is a prefix of a larger one.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.formats.math_answers import reference_text
from pipelines.tools.catalog import bfcl_dir, bfcl_held_out

BFCL_SUITES = {"bfcl_simple": "simple_python", "bfcl_multiple": "multiple", "bfcl_parallel": "parallel",
               "bfcl_parallel_multiple": "parallel_multiple"}
SUITES = (*BFCL_SUITES, "irrelevance", "gsm8k")
_REPO = Path(__file__).resolve().parents[2]
_WORD = re.compile(r"[a-z]{4,}")


@dataclass(frozen=True)
class Item:
    id: str
    suite: str
    question: str
    tools: list[dict[str, Any]] = field(default_factory=list)
    # bfcl_*: BFCL's ground truth; irrelevance: []; gsm8k: the reference answer text.
    expected: Any = None


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"eval data not found at {path}")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _question(q: dict[str, Any]) -> str:
    turns = q["question"][0]
    return next(m["content"] for m in turns if m["role"] == "user")


def _held_out(q: dict[str, Any]) -> bool:
    return all(bfcl_held_out(f["name"]) for f in q["function"])


def _bfcl(suite: str) -> list[Item]:
    cat = BFCL_SUITES[suite]
    answers = {a["id"]: a["ground_truth"] for a in _jsonl(bfcl_dir() / f"BFCL_v4_{cat}.possible_answer.json")}
    return [Item(q["id"], suite, _question(q), q["function"], answers[q["id"]])
            for q in _jsonl(bfcl_dir() / f"BFCL_v4_{cat}.json") if _held_out(q)]


def _words(text: str) -> set[str]:
    return {w[:5] for w in _WORD.findall(text.lower().replace("_", " ").replace(".", " "))}


def _function_words(f: dict[str, Any]) -> set[str]:
    params = " ".join((f.get("parameters") or {}).get("properties", {}))
    return _words(f"{f['name']} {f.get('description', '')} {params}")


def _irrelevance() -> list[Item]:
    simple = [i for i in _bfcl("bfcl_simple")]
    rng = random.Random("irrelevance")
    items = []
    for item in simple:
        asked = _words(item.question)
        others = [o for o in simple if o.tools[0]["name"] != item.tools[0]["name"]]
        rng.shuffle(others)
        other = next((o for o in others if not asked & _function_words(o.tools[0])), None)
        if other is not None:
            items.append(Item(f"irrelevance_{item.id}", "irrelevance", item.question, other.tools, []))
    return items


def _gsm8k() -> list[Item]:
    path = _REPO.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
    return [Item(f"gsm8k_test_{i}", "gsm8k", r["question"], [], reference_text(r["answer"]))
            for i, r in enumerate(_jsonl(path))]


def load_suite(suite: str, limit: int | None = None, seed: int = 0) -> list[Item]:
    """The suite's items in their fixed order; the first `limit` of them."""
    if suite not in SUITES:
        raise ValueError(f"unknown eval suite {suite!r}; known: {', '.join(SUITES)}")
    items = _bfcl(suite) if suite in BFCL_SUITES else _irrelevance() if suite == "irrelevance" else _gsm8k()
    random.Random(f"{suite}:{seed}").shuffle(items)
    return items[:limit] if limit else items


def _grams(text: str, n: int = 13) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def held_out_report(items: list[Item], training_texts: list[str] | None = None) -> dict[str, Any]:
    """What the eval shares with training, stated in every summary: tool-calling items' function names
    found in the generators' BFCL catalog (0 by construction), and, given the training samples' texts,
    eval questions sharing a 13-word run with them (the n-gram test of GPT-3's contamination study)."""
    from pipelines.tools.catalog import load_catalog
    from pipelines.tools.schema import tool_name

    catalog = {tool_name(t) for t in load_catalog(("bfcl",)).tools}
    shared = sorted({t["name"] for it in items for t in it.tools if t["name"] in catalog})
    report: dict[str, Any] = {"function_names_in_training_catalog": shared}
    if training_texts is not None:
        seen = set().union(*(_grams(t) for t in training_texts)) if training_texts else set()
        report["questions_with_13gram_in_training"] = sorted(it.id for it in items if _grams(it.question) & seen)
    return report
