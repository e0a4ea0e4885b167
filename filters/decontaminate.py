"""Decontamination: drop samples that contain benchmark questions, by word n-gram overlap.

Every benchmark question is cut into word n-grams of its normalised text (the same normalisation as
dedup). A sample is contaminated when, for some benchmark question, at least `min_coverage` of that
question's n-grams occur in the sample: a pasted question covers 1.0; a shared stock phrase covers a few
per cent. The verdict names the benchmark file, the question's line and id, the coverage and the question.

Default benchmarks: GSM8K test questions and the BFCL questions in the project's shared data folder
(`$REFINERY_SHARED_DATA`, else `../shared/data` beside the repository). `files` takes any JSON Lines files
or globs; a question is the first of `fields` a record has (a string, or BFCL's list of message lists, whose
"content" strings are used).
"""

from __future__ import annotations

import glob
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash
from pydantic import Field

from filters.base import Filter
from filters.normalize import normalized_bytes
from filters.views import Scope, view
from pipelines.core.registry import register
from pipelines.core.sample import Sample, Verdict
from pipelines.core.step import Params

DEFAULT_PATTERNS = ("gsm8k/test.jsonl", "bfcl/BFCL_v4_*.json")


def shared_data_dir() -> Path:
    env = os.environ.get("REFINERY_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def default_files() -> list[str]:
    root = shared_data_dir()
    files = [f for pat in DEFAULT_PATTERNS for f in sorted(glob.glob(str(root / pat)))
             if not f.endswith(".possible_answer.json")]
    if not files:
        raise FileNotFoundError(
            f"no default benchmark files under {root} ({', '.join(DEFAULT_PATTERNS)}); "
            "set REFINERY_SHARED_DATA or give the step `files`")
    return files


class DecontaminateParams(Params):
    files: list[str] | None = Field(None, description="benchmark JSON Lines files or globs (default: GSM8K test + BFCL)")
    fields: list[str] = Field(["question", "prompt", "problem", "text"], description="record fields holding the question, first found wins")
    ngram: int = Field(8, ge=3, le=50, description="n-gram length in words")
    min_coverage: float = Field(0.5, gt=0.0, le=1.0, description="share of a question's n-grams found in a sample that flags it")
    scope: Scope = Field("conversation", description="which rendering of the sample is searched")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return [value["content"]]
    return []


def _grams(text: str, n: int) -> set[int]:
    w = normalized_bytes(text).split()
    if len(w) < n:
        return {xxhash.xxh3_64_intdigest(b" ".join(w))} if w else set()
    return {xxhash.xxh3_64_intdigest(b" ".join(w[i:i + n])) for i in range(len(w) - n + 1)}


@dataclass
class BenchmarkIndex:
    items: list[dict[str, Any]]         # file, line, id, question, grams
    postings: dict[int, list[int]]      # n-gram hash -> items containing it

    @classmethod
    def build(cls, files: list[str], fields: list[str], n: int) -> BenchmarkIndex:
        items: list[dict[str, Any]] = []
        postings: dict[int, list[int]] = defaultdict(list)
        for path in files:
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{path}:{lineno}: not JSON: {e}") from None
                    field = next((k for k in fields if k in record), None)
                    if field is None:
                        raise ValueError(f"{path}:{lineno}: none of the fields {fields} in this record")
                    question = "\n".join(_strings(record[field]))
                    grams = _grams(question, n)
                    if not grams:
                        continue
                    for g in grams:
                        postings[g].append(len(items))
                    items.append({"file": Path(path).name, "line": lineno, "id": record.get("id"),
                                  "question": question, "grams": len(grams)})
        if not items:
            raise ValueError(f"no benchmark questions found in {files}")
        return cls(items, dict(postings))

    def best_match(self, text: str, n: int) -> tuple[int, float, int] | None:
        """(item, coverage, matched n-grams) of the benchmark question this text covers most."""
        hits: dict[int, int] = defaultdict(int)
        for g in _grams(text, n):
            for item in self.postings.get(g, ()):
                hits[item] += 1
        if not hits:
            return None
        item = max(hits, key=lambda i: (hits[i] / self.items[i]["grams"], -i))
        return item, hits[item] / self.items[item]["grams"], hits[item]


_INDEXES: dict[tuple, BenchmarkIndex] = {}


@register("filter.decontaminate")
class Decontaminate(Filter):
    Params = DecontaminateParams
    helper_modules = ("filters.normalize", "filters.views")

    def _index(self) -> BenchmarkIndex:
        p = self.params
        files = default_files() if p.files is None else sorted(
            {f for pat in p.files for f in (glob.glob(pat) or [pat])})
        for f in files:
            if not Path(f).is_file():
                raise FileNotFoundError(f"benchmark file {f!r} not found")
        key = (tuple(files), tuple(p.fields), p.ngram)
        if key not in _INDEXES:
            _INDEXES[key] = BenchmarkIndex.build(files, list(p.fields), p.ngram)
        return _INDEXES[key]

    def keep(self, s: Sample) -> Verdict:
        p = self.params
        index = self.__dict__.get("_built")
        if index is None:
            index = self.__dict__["_built"] = self._index()
        match = index.best_match(view(s, p.scope), p.ngram)
        if match is None or match[1] < p.min_coverage:
            return self.verdict(True, details={"coverage": round(match[1], 4) if match else 0.0})
        item, coverage, matched = match
        info = index.items[item]
        return self.verdict(False, "contaminated", score=round(coverage, 4), details={
            "benchmark": info["file"], "line": info["line"], "id": info["id"], "coverage": round(coverage, 4),
            "matched_ngrams": matched, "question": info["question"][:300]})
