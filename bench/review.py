"""Review push and pull throughput on a real Argilla server, in one run.

Pushes the same N samples (default 10,000 chats) twice into two datasets with identical settings:
our batched push (review_ui.push: bulk upserts, `concurrency` requests in flight, journal) and the SDK's
plain one-call `dataset.records.log(records)`; then pulls our dataset into a snapshot. Throughput counts
from samples in memory to records confirmed by the server (the SDK side includes building its Record
objects from the same payloads). Starts a private local stack unless ARGILLA_API_URL/ARGILLA_API_KEY are set.

    .venv/bin/python bench/review.py [--n 10000] [--batch-size 200] [--concurrency 2]

Last line: {"push_records_per_s": ..., "sdk_push_records_per_s": ..., "pull_records_per_s": ...}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from review_ui.connection import Connection  # noqa: E402
from review_ui.datasets import add_float_metadata, ensure_dataset  # noqa: E402
from review_ui.layout import layout_for  # noqa: E402
from review_ui.pull import pull  # noqa: E402
from review_ui.push import PushOptions, count_records, push  # noqa: E402
from review_ui.records import build_record  # noqa: E402
from review_ui.stack import LocalStack, free_port  # noqa: E402
from tests.review_ui.make_samples import make_samples  # noqa: E402


def prepare(conn: Connection, workspace: str, name: str, samples):
    """A dataset with the settings our push makes, score properties included, so both pushes make the
    server do the same work per record (it validates every declared metadata property)."""
    layout = layout_for("chat")
    handle = ensure_dataset(conn, name, workspace, layout)
    scores = sorted({k for k in build_record(samples[0], layout, handle.question_ids)["metadata"] if k.startswith("score_")})
    add_float_metadata(conn, handle, scores)
    return layout, handle


def sdk_push(conn: Connection, samples, workspace: str, name: str) -> float:
    """The SDK's plain path: build rg.Record objects, then one `records.log` call (its default batching)."""
    import argilla as rg

    layout, handle = prepare(conn, workspace, name, samples)
    client = conn.sdk()
    ds = client.datasets(name=name, workspace=workspace)
    names = {v: k for k, v in handle.question_ids.items()}
    started = time.perf_counter()
    records = []
    for s in samples:
        p = build_record(s, layout, handle.question_ids)
        records.append(rg.Record(
            id=p["external_id"], fields=p["fields"], metadata=p["metadata"],
            suggestions=[rg.Suggestion(names[x["question_id"]], x["value"], score=x.get("score"), agent=x["agent"])
                         for x in p["suggestions"]]))
    ds.records.log(records)
    seconds = time.perf_counter() - started
    assert count_records(conn, handle.id) == len(samples)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args()
    samples = make_samples("chat", args.n, seed=2024)
    with tempfile.TemporaryDirectory(prefix="refinery-bench-review-") as tmp:
        stack = None
        if os.environ.get("ARGILLA_API_URL"):
            conn = Connection(os.environ["ARGILLA_API_URL"], os.environ["ARGILLA_API_KEY"])
        else:
            stack = LocalStack(Path(tmp) / "stack", log=lambda m: print(m, file=sys.stderr))
            st = stack.up(port=free_port())
            conn = Connection(st.url, st.api_key)
        try:
            tag = str(int(time.time()))
            opts = PushOptions(dataset=f"bench-ours-{tag}", workspace="bench", batch_size=args.batch_size,
                               concurrency=args.concurrency)
            prepare(conn, "bench", f"bench-ours-{tag}-chat", samples)
            report = push(samples, conn, opts, Path(tmp) / "journal")
            ours = report.seconds
            print(f"ours: {args.n} records in {ours:.1f} s", file=sys.stderr)
            sdk = sdk_push(conn, samples, "bench", f"bench-sdk-{tag}-chat")
            print(f"sdk:  {args.n} records in {sdk:.1f} s", file=sys.stderr)
            started = time.perf_counter()
            folder, _ = pull(conn, f"bench-ours-{tag}-chat", Path(tmp) / "reviews")
            pulled = time.perf_counter() - started
            print(f"pull: {args.n} records in {pulled:.1f} s -> {folder.name}", file=sys.stderr)
        finally:
            if stack is not None:
                stack.down()
    print(json.dumps({"push_records_per_s": round(args.n / ours, 1),
                      "sdk_push_records_per_s": round(args.n / sdk, 1), "pull_records_per_s": round(args.n / pulled, 1)}))


if __name__ == "__main__":
    main()
