"""Per-worker cache parts (the ray executor): each worker writes only its own file, reads the main file
read-only, and the driver folds the parts in, idempotently, skipping a part a live worker still holds.

Writers run as separate processes (spawn), as Ray workers do; the stub backend makes the writes cheap
(the cache's contract is the same for any backend)."""

from __future__ import annotations

import sqlite3

import pytest

from pipelines.llm.budget import DriverBudget
from pipelines.llm.cache import CachedClient, cache_report, init_cache, spent
from pipelines.llm.cache_parts import merge_parts, parts_dir
from pipelines.llm.client import LLMConfig
from pipelines.llm.errors import BudgetExceeded
from tests.llm.test_cache import S, StubBackend, run_workers


def _part_worker(path, start, stop, out):
    client = CachedClient(StubBackend(), path, own_part=True)
    for i in range(start, stop):
        client.complete(f"prompt {i}", sampling=S)
    stats = client.stats()
    client.release()  # what the worker does after each task
    out.put(stats)
    client.close()


def _run_workers(path, ranges):
    return run_workers(_part_worker, path, ranges)


def test_workers_write_own_parts_and_the_fold_gathers_them_once(tmp_path):
    path = tmp_path / "llm_cache.sqlite"
    init_cache(path)
    first = CachedClient(StubBackend(), path)
    first.complete("prompt 0", sampling=S)  # answered by an earlier, local run
    first.close()

    stats = _run_workers(path, [(0, 50), (50, 120)])
    # prompt 0 came from the read-only main file; nobody wrote the main file while the workers ran.
    assert sum(s["cache_hits"] for s in stats) == 1 and sum(s["model_calls"] for s in stats) == 119
    assert cache_report(path)["entries"] == 1
    parts = sorted(parts_dir(path).glob("*.sqlite"))
    assert len(parts) == 2 and not list(parts_dir(path).glob("*-shm"))  # exclusive mode: no shared index

    assert init_cache(path) == {"parts": 2, "entries": 119, "calls": 119, "busy": 0}
    assert not list(parts_dir(path).iterdir())
    assert cache_report(path) == {"entries": 120, "model_calls": 120, "prompts_sent_twice": 0, "failed_calls": 0}
    assert init_cache(path)["parts"] == 0
    # A part whose fold committed but whose file survived (the driver killed before deleting it) is not
    # counted twice: its name is recorded with its rows.
    _run_workers(path, [(120, 130)])
    [part] = parts_dir(path).glob("*.sqlite")
    kept = part.read_bytes()
    init_cache(path)
    part.write_bytes(kept)
    assert init_cache(path) == {"parts": 0, "entries": 0, "calls": 0, "busy": 0} and not part.exists()
    assert cache_report(path)["model_calls"] == 130

    # The next run's workers get every earlier answer from the main file.
    again = _run_workers(path, [(0, 130)])
    assert again[0]["cache_hits"] == 130 and again[0]["model_calls"] == 0


def test_a_part_a_live_worker_holds_is_left_for_the_next_fold(tmp_path):
    path = tmp_path / "llm_cache.sqlite"
    init_cache(path)
    live = CachedClient(StubBackend(), path, own_part=True)
    live.complete("in flight", sampling=S)
    assert init_cache(path)["busy"] == 1  # its exclusive lock: not read half-written
    assert cache_report(path)["entries"] == 0
    live.release()
    assert init_cache(path)["parts"] == 1
    assert cache_report(path)["entries"] == 1
    live.close()


def test_a_part_killed_mid_run_is_recovered(tmp_path):
    """A worker killed without closing leaves its part with a WAL: the fold recovers what was committed."""
    path = tmp_path / "llm_cache.sqlite"
    init_cache(path)
    client = CachedClient(StubBackend(), path, own_part=True)
    for i in range(20):
        client.complete(f"p{i}", sampling=S)
    [part] = parts_dir(path).glob("*.sqlite")
    copy = part.with_name("copy-" + part.name)  # the files as a SIGKILL leaves them (WAL not checkpointed)
    for suffix in ("", "-wal"):
        copy.with_name(copy.name + suffix).write_bytes(part.with_name(part.name + suffix).read_bytes())
    client.release()
    part.unlink()
    assert init_cache(path)["entries"] == 20
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_budget_on_parts_counts_earlier_runs_and_the_driver_counts_every_task(tmp_path):
    path = tmp_path / "llm_cache.sqlite"
    init_cache(path)
    earlier = CachedClient(StubBackend(), path)
    for i in range(4):
        earlier.complete(f"old {i}", sampling=S)  # 5 tokens each: 20 spent before this run
    earlier.close()
    assert spent(path) == (20, 0.0)
    cfg = LLMConfig(max_total_tokens=30)
    worker = CachedClient(StubBackend(), path, cfg, own_part=True)
    worker.complete("new 0", sampling=S)  # 25
    worker.release()
    # 30 reached by the answer that crossed it (stored, then the guard stops the run); a released part
    # is summed afresh, not twice (counted twice, 45 would have stopped it before sending).
    with pytest.raises(BudgetExceeded, match="30 of 30"):
        worker.complete("new 1", sampling=S)
    worker.close()
    # The driver: the worker's guards see their own share only; the driver adds every task's stats.
    driver = DriverBudget(*spent(path), where=str(tmp_path))
    llm = {"max_total_tokens": 30}
    driver.add(llm, {"llm_tokens_in": 3, "llm_tokens_out": 2})
    with pytest.raises(BudgetExceeded, match="token budget spent: 30 of 30"):
        driver.add(llm, {"llm_tokens_in": 3, "llm_tokens_out": 2})
    driver.add(None, {"llm_tokens_in": 3})  # a step without a model: counted, nothing to check
