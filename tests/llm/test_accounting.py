"""Accounting, prices, budgets and fingerprints: what the cache records for every request that reaches a
model. A stub backend answers instantly (the bookkeeping is the same for every backend; the real backends
are covered in test_openai_compat.py and test_openai_run.py)."""

from __future__ import annotations

import sqlite3

import pytest

from pipelines.core.fingerprint import fingerprints
from pipelines.core.recipe import load_recipe
from pipelines.llm.accounting import format_llm_counters, totals_by_backend
from pipelines.llm.cache import CachedClient
from pipelines.llm.client import Completion, LLMConfig, Request, Sampling
from pipelines.llm.errors import BudgetExceeded, StructuredOutputError


class Stub:
    model_id = "stub:v1"

    def __init__(self, config):
        self.config = config
        self.sent = 0

    def generate(self, requests, on_result=None):
        out = []
        for j, r in enumerate(requests):
            self.sent += 1
            res = (StructuredOutputError("{oops", "not valid JSON", tokens_in=10, tokens_out=3)
                   if r.prompt.startswith("bad") else
                   [Completion(text="ok", tokens_in=100, tokens_out=20, latency_s=0.0) for _ in range(r.n)])
            out.append(res)
            if on_result:
                on_result(j, res)
        return out

    def stats(self):
        return {"retries": 2, "retries_http_429": 2, "requests": 999}

    def close(self):
        pass


def req(prompt, n=1):
    return Request(sampling=Sampling(max_tokens=20), prompt=prompt, n=n)


def test_tokens_cost_failures_and_duplicates(tmp_path):
    cfg = LLMConfig(price_in_per_mtok=1.0, price_out_per_mtok=10.0)
    client = CachedClient(Stub(cfg), tmp_path / "c.sqlite", cfg)
    results = client.generate([req("a", n=2), req("bad one"), req("a", n=2), req("b")])
    assert isinstance(results[1], StructuredOutputError)
    assert results[2][0].cached and not results[0][0].cached  # the duplicate was asked once
    assert client.backend.sent == 3
    s = client.stats()
    assert s["requests"] == 4 and s["cache_hits"] == 1 and s["model_calls"] == 3
    assert s["tokens_in"] == 300 + 10 and s["tokens_out"] == 60 + 3  # failed attempts count too
    assert s["failures"] == 1 and s["failures_structured_output_invalid"] == 1
    assert s["cost"] == pytest.approx((310 * 1.0 + 63 * 10.0) / 1e6)
    assert s["retries_http_429"] == 2 and "requests" in s and s["requests"] == 4  # backend keys pass through
    line = format_llm_counters({f"llm_{k}": v for k, v in s.items()})
    assert line.startswith("4 req, 1 cached · tok 310/63 · 2 retries (http_429: 2) · 1 failed "
                           "(structured_output_invalid: 1)") and "cost 0.0009" in line
    assert format_llm_counters({"llm_requests": 0}) == "-"
    with sqlite3.connect(tmp_path / "c.sqlite") as conn:
        rows = conn.execute("SELECT ok, tokens_in, tokens_out, reason FROM calls ORDER BY id").fetchall()
    assert rows == [(1, 200, 40, None), (0, 10, 3, "structured_output_invalid"), (1, 100, 20, None)]
    client.close()


def test_cost_budget_stops_before_sending(tmp_path):
    cfg = LLMConfig(price_in_per_mtok=1000.0, max_cost=0.25)  # 0.1 per request
    client = CachedClient(Stub(cfg), tmp_path / "c.sqlite", cfg)
    with pytest.raises(BudgetExceeded, match=r"cost budget spent: 0.3000 of 0.2500 \(llm.max_cost\)"):
        client.generate([req(f"p{i}") for i in range(10)])
    assert client.backend.sent == 3
    with pytest.raises(BudgetExceeded):
        client.generate([req("p9")])
    assert client.backend.sent == 3 and client.stats()["failures_budget_exceeded"] == 2
    assert client.generate([req("p0")])[0][0].cached  # answers already paid for are still served
    client.close()


def test_old_cache_files_get_the_accounting_columns(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE calls (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, "
                           "time REAL NOT NULL, pid INTEGER NOT NULL, ok INTEGER NOT NULL);"
                           "INSERT INTO calls(key, time, pid, ok) VALUES ('k', 0, 1, 1);")
    cfg = LLMConfig(max_total_tokens=1000)
    client = CachedClient(Stub(cfg), path, cfg)
    client.generate([req("x")])
    assert client.budget.tokens == 120
    client.close()


RECIPE = """\
name: fp
llm: {backend: openai, base_url: "http://127.0.0.1:1/v1"}
steps:
  source: {use: source.synthetic, n: 4}
  answer: {use: test.batch_answer, after: [source]}
"""


def test_speed_and_budget_keys_do_not_change_fingerprints(tmp_path, monkeypatch):
    monkeypatch.setenv("REFINERY_PLUGINS", "tests.llm.llm_components")
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    base = fingerprints(load_recipe(path))
    same = fingerprints(load_recipe(path, [
        "llm.concurrency=2", "llm.timeout_s=5.0", "llm.max_retries=1", "llm.max_total_tokens=10",
        "llm.max_cost=1.5", "llm.price_in_per_mtok=0.1", "llm.base_url=http://10.0.0.1:8000/v1",
        "llm.api_key_env=SOME_KEY"]))
    assert same == base
    changed = fingerprints(load_recipe(path, ["llm.temperature=0.1"]))
    assert changed["answer"] != base["answer"] and changed["source"] == base["source"]
    per_step = fingerprints(load_recipe(path, ["steps.answer.llm.structured_retries=0"]))
    assert per_step["answer"] != base["answer"]


def test_totals_by_backend():
    steps = {"gen": ({"backend": "openai", "model": "m"}, {"llm_requests": 3, "llm_cost": 0.5, "x": 1}),
             "judge": ({"backend": "openai", "model": "m"}, {"llm_requests": 2, "llm_cost": 0.25}),
             "dedup": (None, {})}
    assert totals_by_backend(steps) == {"openai:m": {"llm_requests": 5, "llm_cost": 0.75}}
