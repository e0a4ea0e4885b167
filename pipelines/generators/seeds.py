"""Seed tasks from files: `seeds.jsonl` (any JSON Lines file of prompts) and `seeds.gsm8k` (the GSM8K
split in ../shared/data/gsm8k, reference answers kept for the verifier).

Each row becomes a `seed` sample whose meta carries the task and, when known, the reference answer:

    meta = {"task": "...", "reference_answer": "72", "reference_solution": "...", "source": "train.jsonl:12"}

A relative path is looked up in the working directory first, then under the repository root, so recipes
run the same from either. Rows are taken in file order, or as a seeded random subset (`shuffle_seed`).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params, Step

REPO_ROOT = Path(__file__).resolve().parents[2]
_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$", re.S)


def resolve_path(path: str) -> Path:
    """An absolute path as is; a relative one from the working directory, else from the repository root."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return REPO_ROOT / p


def gsm8k_reference(answer: str, where: str) -> tuple[str, str]:
    """(final answer, worked solution) from a GSM8K answer ending in '#### 72'."""
    m = _GSM8K_FINAL.search(answer)
    if not m:
        raise ValueError(f"{where}: GSM8K answer has no '#### <final answer>' line: {answer[-80:]!r}")
    final = m.group(1).replace(",", "").strip()
    return final, answer[: m.start()].strip()


class JsonlSeedParams(Params):
    path: str = Field(description="JSON Lines file, one task per line")
    prompt_field: str = Field("question", description="the field holding the task text")
    answer_field: str | None = Field(None, description="the field holding a reference answer, if any")
    answer_format: Literal["plain", "gsm8k"] = Field(
        "plain", description="gsm8k: the reference is what follows '####'; the worked solution is kept too")
    limit: int | None = Field(None, ge=1, description="at most this many seeds")
    shuffle_seed: int | None = Field(None, description="take a seeded random subset instead of the first rows")


def jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) per non-blank line, read as consumed; bad JSON names its line."""
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            yield lineno, row


def read_seed_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise FileNotFoundError(f"seed file {path} does not exist")
    rows = []
    for lineno, row in jsonl_rows(path):
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        rows.append((lineno, row))
    return rows


def seed_samples(params: JsonlSeedParams, path: Path, step_name: str) -> Iterator[Sample]:
    rows = read_seed_rows(path)
    if params.shuffle_seed is not None:
        rows = random.Random(params.shuffle_seed).sample(rows, min(len(rows), params.limit or len(rows)))
    elif params.limit is not None:
        rows = rows[: params.limit]
    for lineno, row in rows:
        where = f"{path}:{lineno}"
        task = row.get(params.prompt_field)
        if not isinstance(task, str) or not task.strip():
            raise ValueError(f"{where}: field {params.prompt_field!r} is missing or not a non-empty string")
        meta: dict[str, Any] = {"task": task.strip(), "source": f"{path.name}:{lineno}"}
        if params.answer_field is not None:
            answer = row.get(params.answer_field)
            if not isinstance(answer, (str, int, float)) or isinstance(answer, bool):
                raise ValueError(f"{where}: field {params.answer_field!r} is missing or not a string/number")
            if params.answer_format == "gsm8k":
                meta["reference_answer"], meta["reference_solution"] = gsm8k_reference(str(answer), where)
            else:
                meta["reference_answer"] = str(answer).strip()
        yield Sample(kind="seed", meta=meta, provenance={"step": step_name, "generator": "seeds"})


@register("seeds.jsonl")
class JsonlSeeds(Step):
    kind = "source"
    Params = JsonlSeedParams

    @classmethod
    def input_paths(cls, params: dict) -> dict[tuple, Path]:
        return {("path",): resolve_path(params["path"])}

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        yield from seed_samples(self.params, resolve_path(self.params.path), self.ctx.step_name)


class Gsm8kParams(Params):
    split: Literal["train", "test"] = Field("train", description="test is for evaluation: keep it out of training")
    data_dir: str = Field("../shared/data/gsm8k", description="folder holding train.jsonl and test.jsonl")
    limit: int | None = Field(None, ge=1)
    shuffle_seed: int | None = Field(0, description="seeded random subset; null: the first rows")


@register("seeds.gsm8k")
class Gsm8kSeeds(Step):
    """GSM8K word problems; the final answer after '####' is kept as meta.reference_answer."""

    kind = "source"
    Params = Gsm8kParams

    @classmethod
    def input_paths(cls, params: dict) -> dict[tuple, Path]:
        return {("data_dir",): resolve_path(params["data_dir"]) / f"{params['split']}.jsonl"}

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        p = self.params
        jsonl = JsonlSeedParams(path="", prompt_field="question", answer_field="answer", answer_format="gsm8k",
                                limit=p.limit, shuffle_seed=p.shuffle_seed)
        path = resolve_path(p.data_dir) / f"{p.split}.jsonl"
        yield from seed_samples(jsonl, path, self.ctx.step_name)
