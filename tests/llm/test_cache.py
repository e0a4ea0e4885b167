"""The SQLite request cache: hits, misses, persistence, and several processes sharing one file.

Hit/miss behaviour is checked against the real model; the multi-process stress and kill tests use a stub
backend (the cache's contract is the same for any backend, and the stub makes thousands of writes cheap).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import time

import pytest

from pipelines.llm.cache import CachedClient, cache_report, request_key
from pipelines.llm.client import Completion, Request, Sampling
from pipelines.llm.errors import StructuredOutputError

# The few-shot (base-model) strategy is what these tests exercise; the instruct default has its own tests.
BASE_MODEL = "embedded-gemma-270m"

PROMPT = "Q: What is the capital of Italy?\nA:"
S = Sampling(temperature=0.8, max_tokens=4, seed=1)


class StubBackend:
    """Answers instantly; prompts starting with 'fail' raise like a bad structured output would."""

    model_id = "stub:v1"

    def complete(self, prompt, *, sampling, n=1, json_schema=None):
        if prompt.startswith("fail"):
            raise StructuredOutputError(prompt, "stub failure")
        return [Completion(text=f"{prompt}|{sampling.seed + i}", tokens_in=3, tokens_out=2, latency_s=0.0)
                for i in range(n)]

    def chat(self, messages, *, sampling, n=1, json_schema=None):
        return self.complete(messages[-1]["content"], sampling=sampling, n=n, json_schema=json_schema)

    def stats(self):
        return {}

    def close(self):
        pass


class SharedBackend:
    """Lends the module's one real model to several CachedClients without letting them close it."""

    def __init__(self, backend):
        self._b = backend
        self.model_id = backend.model_id
        self.complete, self.chat, self.stats = backend.complete, backend.chat, backend.stats

    def close(self):
        pass


@pytest.fixture(scope="module")
def model():
    pytest.importorskip("llama_cpp")
    from pipelines.llm.client import LLMConfig
    from pipelines.llm.llama_cpp import LlamaCppClient

    backend = LlamaCppClient(LLMConfig(model=BASE_MODEL, n_threads=1))
    yield SharedBackend(backend)
    backend.close()


def _calls(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT key, pid, ok FROM calls").fetchall()


def test_second_identical_request_is_a_hit(model, tmp_path):
    path = tmp_path / "c.sqlite"
    client = CachedClient(model, path)
    [first] = client.complete(PROMPT, sampling=S)
    [second] = client.complete(PROMPT, sampling=S)
    assert not first.cached and second.cached
    assert (second.text, second.tokens_out) == (first.text, first.tokens_out)
    key = request_key(Request(sampling=S, prompt=PROMPT), model.model_id)
    assert _calls(path) == [(key, os.getpid(), 1)]  # the model was asked once
    stats = client.stats()
    assert stats["requests"] == 2 and stats["cache_hits"] == 1 and stats["model_calls"] == 1
    assert stats["tokens_out"] == first.tokens_out  # tokens count real model work only
    client.close()


def test_different_seed_or_kind_is_a_miss(model, tmp_path):
    client = CachedClient(model, tmp_path / "c.sqlite")
    client.complete(PROMPT, sampling=S)
    [other] = client.complete(PROMPT, sampling=Sampling(temperature=0.8, max_tokens=4, seed=2))
    [chat] = client.chat([{"role": "user", "content": PROMPT}], sampling=S)
    assert not other.cached and not chat.cached
    assert client.stats()["model_calls"] == 3
    client.close()


def test_cache_survives_reopening(model, tmp_path):
    path = tmp_path / "c.sqlite"
    a = CachedClient(model, path)
    first = a.complete(PROMPT, sampling=S, n=2)[0]
    a.close()
    b = CachedClient(model, path)
    got = b.complete(PROMPT, sampling=S, n=2)
    assert [c.cached for c in got] == [True, True] and got[0].text == first.text
    assert b.stats()["model_calls"] == 0
    b.close()
    assert cache_report(path) == {"entries": 1, "model_calls": 1, "prompts_sent_twice": 0, "failed_calls": 0}


def test_failures_are_logged_not_cached_and_counted(tmp_path):
    path = tmp_path / "c.sqlite"
    client = CachedClient(StubBackend(), path)
    client.complete("ok", sampling=S)
    client.complete("ok", sampling=S)
    for _ in range(2):
        with pytest.raises(StructuredOutputError):
            client.complete("fail me", sampling=S)
    stats = client.stats()
    assert stats.pop("busy_s") >= 0
    assert stats == {"requests": 4, "cache_hits": 1, "model_calls": 3, "tokens_in": 3,
                     "tokens_out": 2, "failures": 2, "failures_structured_output_invalid": 2}
    client.close()
    # "fail me" reached the model twice: that is exactly what prompts_sent_twice exists to expose.
    assert cache_report(path) == {"entries": 1, "model_calls": 3, "prompts_sent_twice": 1, "failed_calls": 2}


def _worker(path, start, stop, out):
    client = CachedClient(StubBackend(), path)
    for i in range(start, stop):
        [c] = client.complete(f"prompt {i}", sampling=S)
        assert c.text == f"prompt {i}|{S.seed}"
    out.put(client.stats())
    client.close()


def run_workers(target, path, ranges):
    """Start one spawned process per (start, stop) range running target(path, start, stop, queue); their
    stats, once every one has exited cleanly."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(path, a, b, out)) for a, b in ranges]
    for p in procs:
        p.start()
    stats = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return stats


def test_concurrent_writers_share_one_file(tmp_path):
    path = tmp_path / "c.sqlite"
    # Overlapping ranges: both processes ask for prompts 100..199, usually at the same moment.
    stats = run_workers(_worker, path, ((0, 200), (100, 300)))
    report = cache_report(path)
    assert report["entries"] == 300
    assert report["model_calls"] == sum(s["model_calls"] for s in stats)
    # A prompt both asked before either stored it is sent twice; the report counts exactly those.
    assert report["prompts_sent_twice"] == report["model_calls"] - 300
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = CachedClient(StubBackend(), path)
    for i in range(300):
        assert again.complete(f"prompt {i}", sampling=S)[0].cached
    assert again.stats()["model_calls"] == 0
    again.close()


def _write_forever(path):
    client = CachedClient(StubBackend(), path)
    i = 0
    while True:
        client.complete(f"p{i}" + "x" * 4000, sampling=S)  # large rows: more chance to die mid-write
        i += 1


def test_sigkill_mid_write_leaves_no_partial_entry(tmp_path):
    path = tmp_path / "c.sqlite"
    proc = mp.get_context("spawn").Process(target=_write_forever, args=(path,))
    proc.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists() and cache_report(path)["entries"] >= 200:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    client = CachedClient(StubBackend(), path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = [k for (k,) in conn.execute("SELECT key FROM entries")]
        logged = {k for (k,) in conn.execute("SELECT key FROM calls WHERE ok = 1")}
    # Entry and call log commit together: every stored answer has its log row and vice versa.
    assert len(keys) >= 200 and set(keys) == logged
    assert client.complete("p0" + "x" * 4000, sampling=S)[0].cached
    client.close()


def test_factory_validates_and_wraps_without_loading(tmp_path):
    pytest.importorskip("llama_cpp")
    from pydantic import ValidationError

    from pipelines.llm.factory import build_client
    from pipelines.llm.llama_cpp import LlamaCppClient

    client = build_client({"model": "embedded-gemma-270m", "n_threads": 1}, cache_path=tmp_path / "c.sqlite")
    assert isinstance(client, CachedClient) and isinstance(client.backend, LlamaCppClient)
    assert client.backend._llm is None  # weights load on the first request that misses the cache
    client.close()
    assert isinstance(build_client({}, cache_path=None), LlamaCppClient)
    with pytest.raises(ValidationError):
        build_client({"temperature": "hot"}, cache_path=None)
    with pytest.raises(ValidationError):
        build_client({"backend": "vllm"}, cache_path=None)


def _race_rounds(paths, barrier, worker, out):
    """One of several processes: for each fresh path, wait for the others, then open and write at once."""
    for path in paths:
        barrier.wait(timeout=60)
        try:
            client = CachedClient(StubBackend(), path)
            for i in range(5):
                client.complete(f"w{worker} p{i}", sampling=S)
            client.close()
            out.put(None)
        except Exception as exc:  # reported, not raised: a dead worker would break the barrier for all
            out.put(f"{type(exc).__name__}: {exc}")


def test_many_processes_creating_one_fresh_cache_at_the_same_instant(tmp_path):
    # A fresh run directory: every worker opens llm_cache.sqlite that nobody has created yet. Switching
    # a new file to WAL needs a lock the busy timeout does not wait for ("database is locked", issue 12).
    workers, rounds = 8, 20
    paths = [tmp_path / f"round{r}" / "llm_cache.sqlite" for r in range(rounds)]
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_race_rounds, args=(paths, barrier, w, out)) for w in range(workers)]
    for p in procs:
        p.start()
    errors = [e for e in (out.get(timeout=120) for _ in range(workers * rounds)) if e is not None]
    for p in procs:
        p.join(timeout=60)
    assert errors == []
    for path in paths:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            stored = {k for (k,) in conn.execute("SELECT key FROM entries")}
        assert len(stored) == workers * 5
        assert cache_report(path) == {"entries": workers * 5, "model_calls": workers * 5,
                                      "prompts_sent_twice": 0, "failed_calls": 0}
