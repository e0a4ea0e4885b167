"""A SQLite request cache in front of any backend, so a resumed run never asks the model twice.

Several worker processes share one cache file, each with its own connection: WAL mode lets readers run
beside a writer, and a busy timeout makes writers queue instead of failing. Creating the file (the WAL
switch, the schema) is not covered by the busy timeout, so it happens under an advisory file lock, with
retries, and the executor does it once before any worker starts. Every insert is one
transaction holding both the cached answer and its `calls` log row, so a process killed at any point
leaves either the whole entry or nothing. The `calls` table logs each request that reached the model,
with the tokens and cost it took and, when it failed, why: that is how tests and benchmarks prove that no
prompt was answered twice, and what the run directory's budget (`pipelines.llm.budget`) is summed from.

That one shared file is right for workers on one machine (the local executor). Workers on several
machines (the ray executor) each write a part of their own instead and read the main file read-only; the
driver folds the parts in when no task runs (`pipelines.llm.cache_parts`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

from pipelines.llm import cache_parts
from pipelines.llm.accounting import cost_of, has_prices, snake
from pipelines.llm.budget import BudgetGuard
from pipelines.llm.client import Completion, LLMClient, LLMConfig, OnResult, Request, Result
from pipelines.llm.errors import LLMUnavailable, RequestError
from pipelines.llm.single import SingleRequests

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
# Accounting columns, added to cache files written before they existed (the budget sums them).
_CALL_COLUMNS = {"tokens_in": "INTEGER NOT NULL DEFAULT 0", "tokens_out": "INTEGER NOT NULL DEFAULT 0",
                 "cost": "REAL NOT NULL DEFAULT 0", "busy_s": "REAL NOT NULL DEFAULT 0", "reason": "TEXT"}
BUSY_TIMEOUT_S = 60.0


def request_key(request: Request, model_id: str) -> str:
    """sha256 of the canonical JSON of everything that determines the answer."""
    payload = request.cache_payload(model_id)
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _retry_locked(what: str, fn, attempts: int = 12):
    """Run fn(), retrying with backoff while SQLite says the database is locked or busy.

    SQLite does not call the busy handler for every lock: switching a new file's journal mode to WAL
    (and creating its schema) while other processes do the same fails at once with "database is
    locked". Those steps are idempotent, so retrying them is safe.
    """
    delay = 0.005
    for attempt in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or attempt == attempts - 1:
                raise sqlite3.OperationalError(f"{what}: {exc}") from exc
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 1.0)
    raise AssertionError("unreachable")


def _set_up(conn: sqlite3.Connection) -> None:
    """WAL mode, the schema and the accounting columns; idempotent, so any process may (re)do it."""
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower()
        if mode != "wal":  # another connection held the file open in a mode that cannot switch now
            raise sqlite3.OperationalError("database is locked (journal mode stayed %s)" % mode)
    conn.executescript(_SCHEMA)
    have = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
    for name, decl in _CALL_COLUMNS.items():
        if name not in have:
            try:
                conn.execute(f"ALTER TABLE calls ADD COLUMN {name} {decl}")
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise


def _connect(path: Path, own: bool = False) -> sqlite3.Connection:
    """A connection to a cache file; `own`: a per-worker part that no other process opens while it lives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: no implicit transactions; we open them explicitly with BEGIN IMMEDIATE.
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        if own:
            cache_parts.exclusive(conn)
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        # NORMAL is crash-safe for process kills under WAL (only an OS crash may lose the last commits).
        conn.execute("PRAGMA synchronous=NORMAL")
        if own:
            _set_up(conn)
            return conn
        # Creating the file is serialised across processes with an advisory lock beside it, so a fresh
        # run directory's workers do not all race on the journal-mode switch; the retry covers whatever
        # the lock cannot (a filesystem without flock, another program opening the file).
        with _file_lock(path.with_name(path.name + ".lock")):
            _retry_locked(f"opening the request cache {path}", lambda: _set_up(conn))
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def _file_lock(lock_path: Path):
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a read-only folder: nothing to serialise against, the retry still applies
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock


def init_cache(path: Path | str) -> dict[str, int]:
    """Create the cache file (WAL, schema) before any worker opens it, and fold in the per-worker parts an
    earlier run left (`cache_parts.merge_parts`): called by the executor before the first task and, on
    Ray, after the last."""
    conn = _connect(Path(path))
    try:
        return cache_parts.merge_parts(conn, Path(path))
    finally:
        conn.close()


def spent(cache_path: Path | str) -> tuple[int, float]:
    """Tokens (in + out) and cost of every call the cache file logs."""
    conn = _connect(Path(cache_path))
    try:
        tokens, cost = conn.execute(
            "SELECT COALESCE(SUM(tokens_in + tokens_out), 0), COALESCE(SUM(cost), 0) FROM calls").fetchone()
    finally:
        conn.close()
    return tokens, cost


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


def _spent(result: Result) -> tuple[int, int]:
    """Tokens the model processed for one result, discarded structured-output attempts included."""
    if isinstance(result, RequestError):
        return result.tokens_in, result.tokens_out
    return (sum(c.tokens_in + c.extra.get("discarded_tokens_in", 0) for c in result),
            sum(c.tokens_out + c.extra.get("discarded_tokens_out", 0) for c in result))


def _generate_one_by_one(backend: LLMClient, requests: Sequence[Request], on_result: OnResult) -> None:
    """For backends without a batch method: one request at a time through complete()/chat()."""
    for j, r in enumerate(requests):
        try:
            if r.prompt is not None:
                res: Result = backend.complete(r.prompt, sampling=r.sampling, n=r.n, json_schema=r.json_schema)
            else:
                kwargs = {"tools": list(r.tools)} if r.tools is not None else {}
                res = backend.chat(list(r.messages), sampling=r.sampling, n=r.n, json_schema=r.json_schema,
                                   **kwargs)
        except RequestError as exc:
            res = exc
        on_result(j, res)


class CachedClient(SingleRequests):
    """Wraps a backend: hits are served from SQLite (cached=True), misses go to the backend and are stored.

    Each answer is stored the moment it arrives (also inside a batch), so a worker killed mid-batch loses
    only the requests still in flight. Identical requests within one batch are sent once.
    """

    # Backend counters the cache cannot see for itself, passed through by stats().
    _BACKEND_KEYS = ("retries", "structured_retries")

    def __init__(self, backend: LLMClient, cache_path: Path | str, config: LLMConfig | None = None,
                 own_part: bool = False) -> None:
        self.backend = backend
        self.cache_path = Path(cache_path)
        self.config = config if config is not None else getattr(backend, "config", None)
        # own_part (the ray executor): write a part of this process's own, read the main file read-only.
        self.own_part = own_part
        self._part: Path | None = None
        self._main: sqlite3.Connection | None = None
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = -1
        self._lock = threading.Lock()  # one connection per client; backends may call back from threads
        self._stats: Counter = Counter(
            requests=0, cache_hits=0, model_calls=0, tokens_in=0, tokens_out=0, failures=0
        )
        self._priced = has_prices(self.config)
        cfg = self.config
        self.budget = BudgetGuard(getattr(cfg, "max_total_tokens", None), getattr(cfg, "max_cost", None),
                                  where=str(self.cache_path.parent))
        self._db()  # open now, so a bad path fails at build time rather than at the first request

    @property
    def model_id(self) -> str:
        return self.backend.model_id

    def _db(self) -> sqlite3.Connection:
        """The connection answers are written to. It must not cross fork(): a child gets its own (and, with
        own_part, a part of its own)."""
        if self._conn is None or self._conn_pid != os.getpid():
            if self.own_part:
                if self._part is None or self._conn_pid != os.getpid():
                    self._part = cache_parts.new_part_path(self.cache_path)
                self._conn = _connect(self._part, own=True)
                self._main = cache_parts.open_read_only(self.cache_path)
                if self._main is not None and self.budget.active:
                    self.budget.baseline(self._main)  # what earlier runs spent, summed once per task
            else:
                self._conn = _connect(self.cache_path)
            self._conn_pid = os.getpid()
        return self._conn

    def _lookup(self, key: str) -> str | None:
        row = self._db().execute("SELECT completions FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None and self._main is not None:
            row = self._main.execute("SELECT completions FROM entries WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def release(self) -> None:
        """Close the part between tasks (own_part), so the driver can fold it once the last task is done."""
        if not self.own_part:
            return
        with self._lock:
            self._close_connections()
            self.budget.reset()

    def _close_connections(self) -> None:
        # Only the process that opened them closes them: a forked child's copies are not its own.
        for conn in (self._conn, self._main):
            if conn is not None and self._conn_pid == os.getpid():
                conn.close()
        self._conn = self._main = None

    def generate(self, requests: Sequence[Request], on_result: OnResult | None = None) -> list[Result]:
        """Results in request order: cache hits at once, misses from the backend (stored as they arrive).

        Raises BudgetExceeded before sending anything once the run directory's budget is spent, and
        LLMUnavailable when the backend cannot serve; answers that arrived before either are kept.
        """
        keys = [request_key(r, self.model_id) for r in requests]
        results: list[Result | None] = [None] * len(requests)
        waiting: dict[str, list[int]] = {}
        with self._lock:
            self._stats["requests"] += len(requests)
            for i, key in enumerate(keys):
                if key in waiting:  # the same request twice in one batch: ask once, answer both
                    waiting[key].append(i)
                    continue
                blob = self._lookup(key)
                if blob is None:
                    waiting[key] = [i]
                else:
                    self._stats["cache_hits"] += 1
                    results[i] = _decode(blob)
            self._stats["cache_hits"] += sum(len(ix) - 1 for ix in waiting.values())
        if waiting:
            self._ask(list(waiting), [requests[ix[0]] for ix in waiting.values()], waiting, results)
        if on_result is not None:
            for i, res in enumerate(results):
                on_result(i, res)
        return results  # type: ignore[return-value]  # every slot is filled by now

    def _ask(self, keys: list[str], batch: list[Request], waiting: dict[str, list[int]],
             results: list[Result | None]) -> None:
        clock = [time.perf_counter()]

        def record(j: int, res: Result) -> None:
            # Busy time is the wall time since the previous answer of this batch: the parts add up to the
            # batch's wall time however many requests ran side by side.
            now = time.perf_counter()
            with self._lock:
                busy, clock[0] = now - clock[0], now
            self._record(keys[j], res, busy)
            first, *dupes = waiting[keys[j]]
            results[first] = res
            for i in dupes:
                results[i] = res if isinstance(res, RequestError) else [replace(c, cached=True) for c in res]
            with self._lock:
                self.budget.check(self._db)  # raising here stops the backend sending more

        try:
            with self._lock:
                self.budget.check(self._db)
                self._stats["model_calls"] += len(batch)
            generate = getattr(self.backend, "generate", None)
            if generate is not None:
                generate(batch, record)
            else:
                _generate_one_by_one(self.backend, batch, record)
        except LLMUnavailable as exc:
            with self._lock:
                self._stats["failures"] += 1
                self._stats[f"failures_{snake(type(exc).__name__)}"] += 1
            raise

    def _record(self, key: str, res: Result, busy_s: float) -> None:
        tokens_in, tokens_out = _spent(res)
        cost = cost_of(self.config, tokens_in, tokens_out, busy_s)
        with self._lock:
            self._stats["tokens_in"] += tokens_in
            self._stats["tokens_out"] += tokens_out
            self._stats["busy_s"] += busy_s
            if self._priced:
                self._stats["cost"] += cost
            if isinstance(res, RequestError):
                self._stats["failures"] += 1
                self._stats[f"failures_{res.kind}"] += 1
            conn = self._db()
            # BEGIN IMMEDIATE takes the write lock up front (waiting up to busy_timeout), so the
            # entry and its call log row commit together or not at all.
            conn.execute("BEGIN IMMEDIATE")
            try:
                ok = not isinstance(res, RequestError)
                if ok:
                    # OR IGNORE: if another worker answered the same key meanwhile, the first answer stays.
                    conn.execute(
                        "INSERT OR IGNORE INTO entries(key, model_id, completions, created) VALUES (?,?,?,?)",
                        (key, self.model_id, _encode(res), time.time()),
                    )
                conn.execute(
                    "INSERT INTO calls(key, time, pid, ok, tokens_in, tokens_out, cost, busy_s, reason) "
                    "VALUES (?,?,?,?,?,?,?,?,?)",
                    (key, time.time(), os.getpid(), int(ok), tokens_in, tokens_out, cost, busy_s,
                     None if ok else res.kind))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def stats(self) -> dict[str, float]:
        with self._lock:
            out = dict(self._stats)
        for k, v in self.backend.stats().items():
            if k.startswith(self._BACKEND_KEYS):
                out[k] = v
        return out

    def close(self) -> None:
        with self._lock:
            self._close_connections()
        self.backend.close()
