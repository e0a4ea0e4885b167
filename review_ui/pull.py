"""Pull a dataset's answers into a frozen, versioned snapshot on disk.

    reviews/<dataset>/v0001/records.jsonl   one line per record: the pushed sample + every response
                            manifest.json   server, dataset, counts, annotators, agreement, sha256

A snapshot never changes after it is written (files are made read-only, and the manifest's sha256 is
checked on every read); a pull whose answers equal the latest snapshot's writes no new version. Publish
recipes read a snapshot (`review.pull`), never the live server, so a publish run is reproducible and its
fingerprint changes exactly when it names another snapshot.

Listing every record with its answers needs an owner or admin key (annotator keys cannot list records).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from pipelines.core.sample import canonical_json_bytes, loads_exact
from review_ui.agreement import agreement
from review_ui.connection import Connection, NotFound, ReviewError, call
from review_ui.datasets import find_dataset, user_names
from review_ui.layout import SAMPLE_KEY

PAGE = 1000  # the server's page size limit
VERSION_RE = re.compile(r"^v(\d{4,})$")


def fetch_records(conn: Connection, dataset_id: str, users: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Every record of the dataset with its responses, as snapshot rows, in the server's order."""
    with conn.http() as http:
        offset = 0
        while True:
            r = call(http, "GET", f"/api/v1/datasets/{dataset_id}/records",
                     params={"offset": offset, "limit": PAGE, "include": ["responses"]}, retry_for=60)
            items = r.json()["items"]
            for rec in items:
                yield _row(rec, users)
            if len(items) < PAGE:
                return
            offset += len(items)


def _row(rec: dict[str, Any], users: dict[str, str]) -> dict[str, Any]:
    md = rec.get("metadata") or {}
    if SAMPLE_KEY not in md:
        raise ReviewError(f"record {rec['id']} (external id {rec.get('external_id')}) carries no sample: "
                          "it was not pushed by Refinery, or its metadata was overwritten")
    responses = sorted(
        ({"user": users.get(r["user_id"], r["user_id"]), "user_id": r["user_id"], "status": r["status"],
          "values": {q: v.get("value") for q, v in (r.get("values") or {}).items()},
          "updated_at": r["updated_at"]} for r in rec.get("responses") or []),
        key=lambda r: (r["updated_at"], r["user"]),
    )
    return {"external_id": rec["external_id"], "record_id": rec["id"], "status": rec.get("status"),
            "sample": json.loads(md[SAMPLE_KEY]), "responses": responses}


def pull(conn: Connection, dataset: str, root: Path, workspace: str | None = None) -> tuple[Path, bool]:
    """Write a new snapshot version of `dataset` under root/<dataset>/; returns (folder, created). When
    the answers are unchanged since the latest snapshot, that snapshot is returned with created=False."""
    handle = find_dataset(conn, dataset, workspace)
    if handle is None:
        raise NotFound(f"no dataset named {dataset!r} on {conn.url}")
    users = user_names(conn)
    rows = list(fetch_records(conn, handle.id, users))
    ids = Counter(r["external_id"] for r in rows)
    dupes = [i for i, n in ids.items() if n > 1]
    if dupes:
        raise ReviewError(f"dataset {dataset!r} holds {len(dupes)} sample ids more than once, e.g. {dupes[0]}")
    rows.sort(key=lambda r: r["external_id"])  # a snapshot's bytes do not depend on the server's order
    body = b"".join(canonical_json_bytes(r) + b"\n" for r in rows)
    digest = hashlib.sha256(body).hexdigest()

    base = root / dataset
    latest = latest_version(base)
    if latest is not None and read_manifest(latest)["files"]["records.jsonl"]["sha256"] == digest:
        return latest, False
    number = (int(VERSION_RE.match(latest.name).group(1)) + 1) if latest else 1
    manifest = {
        "dataset": handle.name, "dataset_id": handle.id, "workspace": handle.workspace, "kind": handle.kind,
        "server": conn.url, "version": number, "parent": latest.name if latest else None,
        "pulled_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "min_submitted": handle.min_submitted, **summarize(rows, handle.kind),
        "files": {"records.jsonl": {"sha256": digest, "rows": len(rows)}},
    }
    final = base / f"v{number:04d}"
    tmp = base / f".v{number:04d}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "records.jsonl").write_bytes(body)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for f in tmp.iterdir():
        f.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # frozen
    os.rename(tmp, final)  # atomic: a snapshot folder is complete or absent
    return final, True


def summarize(rows: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    statuses = Counter(r["status"] for r in rows)
    responses = Counter(x["status"] for r in rows for x in r["responses"])
    per_user: dict[str, Counter] = {}
    for r in rows:
        for x in r["responses"]:
            per_user.setdefault(x["user"], Counter())[x["status"]] += 1
    n_answers = None
    if kind == "preference":
        from pipelines.core.sample import Sample
        from review_ui.records import preference_parts

        n_answers = {r["external_id"]: len(preference_parts(Sample.from_dict(r["sample"]))[1]) for r in rows}
    return {
        "records": len(rows),
        "record_status": dict(sorted(statuses.items(), key=lambda kv: str(kv[0]))),
        "responses": dict(sorted(responses.items())),
        "annotators": {u: dict(sorted(c.items())) for u, c in sorted(per_user.items())},
        "agreement": agreement(rows, kind, n_answers),
    }


def versions(base: Path) -> list[Path]:
    if not base.is_dir():
        return []
    found = [p for p in base.iterdir() if p.is_dir() and VERSION_RE.match(p.name)]
    return sorted(found, key=lambda p: int(VERSION_RE.match(p.name).group(1)))


def latest_version(base: Path) -> Path | None:
    vs = versions(base)
    return vs[-1] if vs else None


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / "manifest.json"
    if not path.is_file():
        raise NotFound(f"{folder} is not a review snapshot (no manifest.json)")
    return json.loads(path.read_text())


def read_snapshot(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(manifest, rows), after checking the rows against the manifest's sha256."""
    folder = Path(folder)
    if not (folder / "manifest.json").is_file() and versions(folder):
        listed = ", ".join(str(v) for v in versions(folder))
        raise ReviewError(f"{folder} holds several snapshots; name one: {listed}")
    manifest = read_manifest(folder)
    body = (folder / "records.jsonl").read_bytes()
    want = manifest["files"]["records.jsonl"]["sha256"]
    if hashlib.sha256(body).hexdigest() != want:
        raise ReviewError(f"{folder}/records.jsonl does not match its manifest (sha256): the snapshot was edited")
    return manifest, [loads_exact(line) for line in body.splitlines() if line.strip()]
