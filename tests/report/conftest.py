"""Real runs to report on: a recipe of real filters over samples shaped like the generators' output
(every kind, personas, tool calls, reasoning, and planted duplicates, broken calls and short answers, so
several steps drop samples for several reasons), and the same recipe tuned so that nothing survives."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pipelines.core.executor import run_recipe
from pipelines.core.recipe import load_recipe
from pipelines.core.sample import Message, ToolCall
from tests.review_ui.make_samples import make_sample

RECIPE = """\
name: report-fixture
shard_size: 8
steps:
  gen: {{use: io.read_jsonl, path: {samples}}}
  length: {{use: filter.length, after: [gen], min_chars: {min_chars}}}
  tool_calls: {{use: filter.tool_calls, after: [length]}}
  exact: {{use: filter.exact_dedup, after: [tool_calls]}}
  final: {{use: io.write_jsonl, after: [exact]}}
  report: {{use: report.html, after: [final]}}
{extra}"""


def write_samples(path: Path) -> dict[str, int]:
    """40 samples over four kinds; returns how many of each planted fault there are."""
    samples = [make_sample(kind, i) for kind in ("chat", "reasoning", "tool_use", "preference") for i in range(10)]
    samples = [replace(s, verdicts=[]) for s in samples]  # no verdicts from elsewhere: this run decides
    planted = {"duplicates": 3, "short": 2, "bad_calls": 2}
    out = list(samples)
    out += [samples[i] for i in range(planted["duplicates"])]                    # exact repeats
    for i in range(planted["short"]):                                           # a one-letter answer
        s = samples[10 + i]
        out.append(replace(s, messages=[s.messages[0], Message("assistant", "k")], meta={"short": i}))
    for i in range(planted["bad_calls"]):                                       # a call with no `city`
        s = samples[20 + 2 * i]
        bad = [s.messages[0], Message("assistant", "", tool_calls=[ToolCall("get_weather", {"days": 2})])]
        out.append(replace(s, messages=bad, meta={"case": "single", "bad": i}))
    path.write_text("".join(json.dumps(s.to_dict()) + "\n" for s in out), encoding="utf-8")
    return planted


def make_run(root: Path, min_chars: int = 2, extra: str = "") -> Path:
    samples = root / "samples.jsonl"
    write_samples(samples)
    recipe = root / "recipe.yaml"
    recipe.write_text(RECIPE.format(samples=samples, min_chars=min_chars, extra=extra), encoding="utf-8")
    run_dir = root / "run"
    run_recipe(load_recipe(recipe), run_dir, workers=2)
    return run_dir


@pytest.fixture(scope="session")
def report_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("report-run"))


@pytest.fixture(scope="session")
def empty_run(tmp_path_factory) -> Path:
    """Every sample is shorter than min_chars: the length filter drops them all."""
    return make_run(tmp_path_factory.mktemp("report-empty"), min_chars=100_000)
