"""Kill the Argilla server (SIGKILL) in the middle of a push, restart it, push again: every record is
there exactly once, in the database and in the search index the UI lists from."""

from __future__ import annotations

import threading
import time

from review_ui.connection import ReviewError
from review_ui.datasets import find_dataset
from review_ui.pull import fetch_records
from review_ui.push import PushOptions, count_records, push
from tests.review_ui.conftest import WORKSPACE
from tests.review_ui.make_samples import make_samples


def _wait_for_records(conn, name: str, at_least: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    handle = None
    while time.monotonic() < deadline:
        handle = handle or find_dataset(conn, name, WORKSPACE)
        if handle is not None and count_records(conn, handle.id) >= at_least:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} never reached {at_least} records")


def test_server_killed_mid_push_then_repush_loses_and_duplicates_nothing(stack, conn, tmp_path):
    samples = make_samples("chat", 1000, seed=42)
    journal = tmp_path / "journal"
    opts = PushOptions(dataset="crash", workspace=WORKSPACE, batch_size=50, concurrency=2, retry_for=0)
    failures: list[BaseException] = []

    def first_push() -> None:
        try:
            push(samples, conn, opts, journal)
        except ReviewError as e:
            failures.append(e)

    worker = threading.Thread(target=first_push)
    worker.start()
    _wait_for_records(conn, "crash-chat", 200)
    stack.kill("server")
    worker.join(timeout=300)
    assert not worker.is_alive()
    assert failures and "rerun the same push" in str(failures[0])
    # Confirmed = answered before the kill. The server had stored more than that (it commits before it
    # answers), so the re-push below sends some records it already holds: they must not duplicate.
    confirmed = len((next(journal.glob("crash-chat-*.journal"))).read_text().split())
    assert 0 < confirmed < 1000

    stack.start_service("server")
    opts.retry_for = 60
    report = push(samples, conn, opts, journal).datasets["crash-chat"]
    assert report.skipped == confirmed and report.sent == 1000 - confirmed and report.on_server == 1000

    handle = find_dataset(conn, "crash-chat", WORKSPACE)
    ids = [r["external_id"] for r in fetch_records(conn, handle.id, {})]
    assert len(ids) == 1000 and set(ids) == {s.id for s in samples}
    with conn.http() as http:  # the search index (what the UI lists) holds each record once too
        r = http.post(f"/api/v1/datasets/{handle.id}/records/search", params={"limit": 1}, json={})
        assert r.json()["total"] == 1000
