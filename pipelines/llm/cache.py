"""A SQLite request cache in front of any backend, so a resumed run never asks the model twice.

Several worker processes share one cache file, each with its own connection: WAL mode lets readers run
beside a writer, and a busy timeout makes writers queue instead of failing. Every insert is one
transaction holding both the cached answer and its `calls` log row, so a process killed at any point
leaves either the whole entry or nothing. The `calls` table logs each request that reached the model,
which is how tests and benchmarks prove that no prompt was answered twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipelines.llm.client import Completion, LLMClient, Request, Sampling

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    completions TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    time REAL NOT NULL,
    pid INTEGER NOT NULL,
    ok INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_key ON calls(key);
"""
BUSY_TIMEOUT_S = 60.0


def request_key(request: Request, model_id: str) -> str:
    """sha256 of the canonical JSON of everything that determines the answer."""
    payload = request.cache_payload(model_id)
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: no implicit transactions; we open them explicitly with BEGIN IMMEDIATE.
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL is crash-safe for process kills under WAL (only an OS crash may lose the last commits).
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    return conn


def cache_report(cache_path: Path | str) -> dict[str, int]:
    """Counts over the whole cache file, across all processes that ever used it."""
    conn = _connect(Path(cache_path))
    try:
        entries = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
        model_calls = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        failed_calls = conn.execute("SELECT COUNT(*) FROM calls WHERE ok = 0").fetchone()[0]
        twice = conn.execute(
            "SELECT COUNT(*) FROM (SELECT key FROM calls GROUP BY key HAVING COUNT(*) > 1)"
        ).fetchone()[0]
    finally:
        conn.close()
    return {"entries": entries, "model_calls": model_calls, "prompts_sent_twice": twice,
            "failed_calls": failed_calls}


def _encode(completions: list[Completion]) -> str:
    rows = []
    for c in completions:
        row = asdict(c)
        row.pop("cached")
        rows.append(row)
    return json.dumps(rows, ensure_ascii=False)


def _decode(blob: str) -> list[Completion]:
    return [Completion(**row, cached=True) for row in json.loads(blob)]


class CachedClient:
    """Wraps a backend: hits are served from SQLite (cached=True), misses go to the backend and are stored."""

    def __init__(self, backend: LLMClient, cache_path: Path | str) -> None:
        self.backend = backend
        self.cache_path = Path(cache_path)
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = -1
        self._lock = threading.Lock()  # one connection per client; steps may call it from threads
        self._stats: Counter = Counter(
            requests=0, cache_hits=0, model_calls=0, tokens_in=0, tokens_out=0, failures=0
        )
        self._db()  # open now, so a bad path fails at build time rather than at the first request

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def _db(self) -> sqlite3.Connection:
        # A connection must not cross fork(): a child gets its own.
        if self._conn is None or self._conn_pid != os.getpid():
            self._conn = _connect(self.cache_path)
            self._conn_pid = os.getpid()
        return self._conn

    def complete(self, prompt: str, *, sampling: Sampling, n: int = 1,
                 json_schema: dict[str, Any] | None = None) -> list[Completion]:
        request = Request(sampling=sampling, prompt=prompt, n=n, json_schema=json_schema)
        return self._serve(request, lambda: self.backend.complete(
            prompt, sampling=sampling, n=n, json_schema=json_schema))

    def chat(self, messages: list[dict[str, Any]], *, sampling: Sampling, n: int = 1,
             json_schema: dict[str, Any] | None = None) -> list[Completion]:
        request = Request(sampling=sampling, messages=tuple(messages), n=n, json_schema=json_schema)
        return self._serve(request, lambda: self.backend.chat(
            messages, sampling=sampling, n=n, json_schema=json_schema))

    def _serve(self, request: Request, call) -> list[Completion]:
        key = request_key(request, self.model_id)
        with self._lock:
            self._stats["requests"] += 1
            row = self._db().execute("SELECT completions FROM entries WHERE key = ?", (key,)).fetchone()
            if row is not None:
                self._stats["cache_hits"] += 1
                return _decode(row[0])
            self._stats["model_calls"] += 1
        # The model call runs outside the lock so other threads can keep reading the cache.
        try:
            completions = call()
        except Exception:
            with self._lock:
                self._stats["failures"] += 1
            # The request did reach the model; log it so double-asking shows up in cache_report.
            self._write(key, None)
            raise
        with self._lock:
            self._stats["tokens_in"] += sum(c.tokens_in for c in completions)
            self._stats["tokens_out"] += sum(c.tokens_out for c in completions)
        self._write(key, completions)
        return completions

    def _write(self, key: str, completions: list[Completion] | None) -> None:
        with self._lock:
            conn = self._db()
            # BEGIN IMMEDIATE takes the write lock up front (waiting up to busy_timeout), so the
            # entry and its call log row commit together or not at all.
            conn.execute("BEGIN IMMEDIATE")
            try:
                if completions is not None:
                    # OR IGNORE: if another worker answered the same key meanwhile, the first answer stays.
                    conn.execute(
                        "INSERT OR IGNORE INTO entries(key, model_id, completions, created) VALUES (?,?,?,?)",
                        (key, self.model_id, _encode(completions), time.time()),
                    )
                conn.execute("INSERT INTO calls(key, time, pid, ok) VALUES (?,?,?,?)",
                             (key, time.time(), os.getpid(), int(completions is not None)))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def stats(self) -> dict[str, int]:
        return dict(self._stats)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._conn_pid == os.getpid():
                self._conn.close()
            self._conn = None
        self.backend.close()
