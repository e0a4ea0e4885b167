"""Whole runs on the OpenAI backend: two worker processes, a real llama_cpp.server behind a fault proxy.
The run completes with every sample exactly once, retries and failures are counted in the step's stats,
and a token budget stops a run that a rerun with a larger budget resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.core.executor import RunFailed, run_recipe
from pipelines.core.recipe import load_recipe
from pipelines.llm.accounting import format_llm_counters
from pipelines.llm.cache import cache_report
from tests.llm.fault_proxy import FaultProxy

RECIPE = """\
name: openai-run
shard_size: 4
workers: 2
llm: {{backend: openai, base_url: "{url}", model: embedded-gemma-270m, structured_output: json_object,
       temperature: 0.7, seed: 0, max_retries: 4, retry_backoff_s: 0.05, timeout_s: 20.0, concurrency: 3}}
steps:
  source: {{use: source.synthetic, n: 16, seed: 3, duplicate_rate: 0.0}}
  answer: {{use: test.batch_answer, after: [source], max_tokens: 4}}
  final:  {{use: io.write_jsonl, after: [answer]}}
"""
REJECT_SEED = 5  # the proxy answers this request with HTTP 400: its sample must be dropped with a reason


@pytest.fixture(autouse=True)
def plugins(monkeypatch):
    monkeypatch.setenv("REFINERY_PLUGINS", "tests.llm.llm_components")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[2]))


def _faults(body: bytes, attempt: int) -> str | None:
    seed = json.loads(body)["seed"]
    if seed == REJECT_SEED:
        return "400"
    script = [["429", "reset"], [], ["500"], ["slow"], ["reset", "500"]][seed % 5]
    return script[attempt] if attempt < len(script) else None


def _write(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(url=url))
    return path


def test_run_through_faults_keeps_every_sample_once(llama_server, server_port, tmp_path):
    run_dir = tmp_path / "run"
    with FaultProxy(server_port, plan=_faults, slow_s=0.3, retry_after_s=0.05) as proxy:
        result = run_recipe(load_recipe(_write(tmp_path, proxy.base_url)), run_dir)
    answer = result.steps["answer"]
    # Shards of 4 samples use seeds 0..3, so no request meets the 400 here (the next test covers that).
    lines = (run_dir / "final.jsonl").read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert answer["in"] == answer["out"] == 16 and answer["dropped"] == {}
    assert len(ids) == len(set(ids)) == answer["out"]
    c = answer["counters"]
    assert c["llm_requests"] == 16 and c["llm_model_calls"] == 16 and c["llm_cache_hits"] == 0
    assert c["llm_retries"] > 0 and c["llm_retries_reset"] > 0 and c["llm_retries_http_500"] > 0
    assert "retries" in format_llm_counters(c)
    report = cache_report(run_dir / "llm_cache.sqlite")
    assert report["prompts_sent_twice"] == 0 and report["model_calls"] == 16


def test_rejected_request_becomes_a_drop_verdict_with_its_reason(llama_server, server_port, tmp_path):
    run_dir = tmp_path / "run"
    recipe = _write(tmp_path, "URL").read_text().replace("shard_size: 4", "shard_size: 8")
    (tmp_path / "recipe.yaml").write_text(recipe)
    with FaultProxy(server_port, plan=_faults, slow_s=0.3, retry_after_s=0.05) as proxy:
        (tmp_path / "recipe.yaml").write_text(recipe.replace("URL", proxy.base_url))
        result = run_recipe(load_recipe(tmp_path / "recipe.yaml"), run_dir)
    answer = result.steps["answer"]
    # Two shards of 8 samples, seeds 0..7 in each: the request with seed 5 is rejected in both.
    assert answer["dropped"] == {"request_rejected": 2} and answer["out"] == 14
    assert answer["counters"]["llm_failures_request_rejected"] == 2


def test_budget_stops_the_run_and_a_larger_budget_resumes(llama_server, server_port, tmp_path):
    run_dir = tmp_path / "run"
    recipe = _write(tmp_path, llama_server)
    with pytest.raises(RunFailed, match="BudgetExceeded: token budget spent"):
        run_recipe(load_recipe(recipe, ["llm.max_total_tokens=40"]), run_dir)
    spent = cache_report(run_dir / "llm_cache.sqlite")["model_calls"]
    assert 0 < spent < 16
    # Budget keys are not part of the fingerprint: the same step folders are resumed, nothing is asked twice.
    result = run_recipe(load_recipe(recipe, ["llm.max_total_tokens=100000"]), run_dir)
    assert result.steps["answer"]["out"] == 16
    report = cache_report(run_dir / "llm_cache.sqlite")
    assert report["model_calls"] == 16 and report["prompts_sent_twice"] == 0
