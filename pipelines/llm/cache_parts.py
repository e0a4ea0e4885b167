"""Per-worker request-cache files for runs whose workers live on several machines (the ray executor).

SQLite's locking is not reliable on network filesystems (NFS and most cluster filesystems), and WAL mode
needs every process of a database on one host. So on Ray no file is shared by two writers:

- each worker process writes its own part, `RUN_DIR/llm_cache.parts/<host>-<pid>-<tag>.sqlite`, in
  exclusive locking mode (WAL without a shared-memory index: nothing depends on cross-host locks);
- it reads its own part and the run's main cache file, which nobody writes while tasks run, opened
  read-only and immutable;
- the driver folds the parts into the main file when no task runs: before the first task (what a killed
  run left behind) and after the last. A fold records each part's name in the same transaction as its
  rows, so a fold interrupted at any point is finished by the next one without counting a call twice, and
  a part still held by a live process (its exclusive lock) is left for the next fold.

Within one run two workers do not see each other's answers; that costs nothing, because a request is
sent by the one task whose shard it belongs to, except when Ray retries a task lost with its worker (the
retry may ask again what the lost worker had answered). Across runs (a killed driver, a resume) nothing
is asked twice.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import uuid
from pathlib import Path

PARTS = ".parts"  # llm_cache.sqlite -> llm_cache.parts/

_MERGED = "CREATE TABLE IF NOT EXISTS merged_parts (name TEXT PRIMARY KEY, entries INTEGER, calls INTEGER)"
_CALL_FIELDS = "key, time, pid, ok, tokens_in, tokens_out, cost, busy_s, reason"


def parts_dir(cache_path: Path) -> Path:
    return cache_path.with_name(cache_path.stem + PARTS)


def new_part_path(cache_path: Path) -> Path:
    """A name no other process on any host uses: host, pid, and a random tag (one per client)."""
    host = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in socket.gethostname()) or "host"
    return parts_dir(cache_path) / f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}.sqlite"


def exclusive(conn: sqlite3.Connection) -> None:
    """Before the first read: this connection alone owns the file, and WAL keeps its index in memory."""
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")


def open_read_only(cache_path: Path) -> sqlite3.Connection | None:
    """The main cache file as it was when the run started (None before it exists). `immutable`: SQLite
    takes no lock and reads the main file only, which is right because the driver folded and checkpointed
    it before any task started and nobody writes it until the last task has finished."""
    if not cache_path.exists():
        return None
    return sqlite3.connect(f"{cache_path.resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                           check_same_thread=False)


def merge_parts(conn: sqlite3.Connection, cache_path: Path) -> dict[str, int]:
    """Fold every finished part into the main cache (`conn`, opened on it), then delete the part files.

    Returns {"parts": folded, "entries": new entries, "calls": call rows, "busy": parts left for later}.
    """
    folder = parts_dir(cache_path)
    done = {"parts": 0, "entries": 0, "calls": 0, "busy": 0}
    if not folder.is_dir():
        return done
    conn.execute(_MERGED)
    for part in sorted(folder.glob("*.sqlite")):
        name = part.name
        if conn.execute("SELECT 1 FROM merged_parts WHERE name = ?", (name,)).fetchone() is None:
            try:
                folded = _fold(conn, part)
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):  # a live worker still holds it
                    done["busy"] += 1
                    continue
                raise
            done["parts"] += 1
            done["entries"] += folded[0]
            done["calls"] += folded[1]
        for leftover in (part, part.with_name(name + "-wal"), part.with_name(name + "-shm")):
            leftover.unlink(missing_ok=True)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # immutable readers read the main file only
    return done


def _fold(conn: sqlite3.Connection, part: Path) -> tuple[int, int]:
    # Opening the part on its own first recovers a WAL its killed writer left, and fails fast (no busy
    # wait) while a live writer holds the exclusive lock.
    probe = sqlite3.connect(part, timeout=0)
    try:
        has_tables = probe.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('entries', 'calls')").fetchone()[0] == 2
        probe.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        probe.close()
    conn.execute("ATTACH DATABASE ? AS part", (str(part),))
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            entries = calls = 0
            if has_tables:
                before = conn.total_changes
                conn.execute("INSERT OR IGNORE INTO main.entries SELECT key, model_id, completions, created "
                             "FROM part.entries")
                entries = conn.total_changes - before
                before = conn.total_changes
                conn.execute(f"INSERT INTO main.calls({_CALL_FIELDS}) SELECT {_CALL_FIELDS} FROM part.calls "
                             "ORDER BY id")
                calls = conn.total_changes - before
            conn.execute("INSERT INTO merged_parts(name, entries, calls) VALUES (?,?,?)",
                         (part.name, entries, calls))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("DETACH DATABASE part")
    return entries, calls
