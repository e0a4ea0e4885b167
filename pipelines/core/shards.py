"""Samples <-> parquet shards, lossless and atomic.

Messages and verdicts are native Arrow structs, so a shard can be queried with polars or duckdb directly.
Open-ended payloads (tool-call arguments, tool schemas, persona, provenance, meta) are canonical JSON
strings: Arrow needs one schema per column, and arguments differ per function.

Every file is written to a temporary name and renamed into place, so a reader never sees half a file; the
caller records each file's sha256 so a shard damaged after it was written is detected, not silently read.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle

import orjson
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.core.sample import Candidate, Message, Sample, ToolCall, Verdict, canonical_json, loads_exact

_TOOL_CALL = pa.struct([("name", pa.string()), ("arguments", pa.string()), ("id", pa.string())])
_MESSAGE = pa.struct([
    ("role", pa.string()),
    ("content", pa.string()),
    ("reasoning", pa.string()),
    ("tool_calls", pa.list_(_TOOL_CALL)),
    ("name", pa.string()),
    ("tool_call_id", pa.string()),
])
_VERDICT = pa.struct([
    ("filter", pa.string()),
    ("keep", pa.bool_()),
    ("reason", pa.string()),
    ("score", pa.float64()),
    ("duplicate_of", pa.string()),
    ("details", pa.string()),
])
SCHEMA = pa.schema([
    ("id", pa.string()),
    ("kind", pa.string()),
    ("messages", pa.list_(_MESSAGE)),
    ("tools", pa.string()),
    ("candidates", pa.string()),
    ("persona", pa.string()),
    ("provenance", pa.string()),
    ("verdicts", pa.list_(_VERDICT)),
    ("meta", pa.string()),
])

_READ_BATCH = 2048


def _dumps(value: Any) -> str:
    if not value:  # most samples have no tools, candidates or meta: skip the encoder
        return _EMPTY.get(type(value)) or orjson.dumps(value).decode()
    return canonical_json(value)


_EMPTY = {list: "[]", dict: "{}", type(None): "null"}
_loads = loads_exact  # integers beyond 64 bits stay exact


def _message_row(m: Message) -> dict[str, Any]:
    return {
        "role": m.role,
        "content": m.content,
        "reasoning": m.reasoning,
        "tool_calls": [{"name": c.name, "arguments": _dumps(c.arguments), "id": c.id} for c in m.tool_calls],
        "name": m.name,
        "tool_call_id": m.tool_call_id,
    }


def to_row(s: Sample) -> dict[str, Any]:
    return {
        "id": s.id,
        "kind": s.kind,
        "messages": [_message_row(m) for m in s.messages],
        "tools": _dumps(s.tools),
        "candidates": _dumps([c.to_dict() for c in s.candidates]),
        "persona": _dumps(s.persona),
        "provenance": _dumps(s.provenance),
        "verdicts": [
            {**v.to_dict(), "details": _dumps(v.details)} for v in s.verdicts
        ],
        "meta": _dumps(s.meta),
    }


def from_row(r: dict[str, Any]) -> Sample:
    s = _sample(r)
    s._known_id = r["id"]  # written by to_row from this content; the shard's sha256 vouches for both
    return s


def _sample(r: dict[str, Any]) -> Sample:
    return Sample(
        kind=r["kind"],
        messages=[
            Message(
                role=m["role"],
                content=m["content"] or "",
                reasoning=m["reasoning"],
                tool_calls=[ToolCall(c["name"], _loads(c["arguments"]), c["id"]) for c in m["tool_calls"] or []],
                name=m["name"],
                tool_call_id=m["tool_call_id"],
            )
            for m in r["messages"] or []
        ],
        tools=_loads(r["tools"]),
        candidates=[Candidate.from_dict(c) for c in _loads(r["candidates"])],
        persona=_loads(r["persona"]),
        provenance=_loads(r["provenance"]),
        verdicts=[
            Verdict(v["filter"], v["keep"], v["reason"] or "", v["score"], v["duplicate_of"], _loads(v["details"]))
            for v in r["verdicts"] or []
        ],
        meta=_loads(r["meta"]),
    )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_shard(path: Path, samples: Iterable[Sample]) -> dict[str, Any]:
    """Write samples to `path` atomically; return {"rows", "sha256", "ids"} for the shard's stats."""
    rows = [to_row(s) for s in samples]
    return write_rows(path, rows)


def write_rows(path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    pq.write_table(table, tmp, compression="zstd")
    _fsync(tmp)
    os.replace(tmp, path)
    return {"rows": len(rows), "sha256": file_sha256(path)}


def read_shard(path: Path) -> Iterator[Sample]:
    """Stream samples from a shard one record batch at a time (memory stays bounded)."""
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=_READ_BATCH):
        for row in batch.to_pylist():
            yield from_row(row)


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, path)


def write_json_atomic(path: Path, value: Any) -> None:
    write_text_atomic(path, json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False))


def write_pickle_atomic(path: Path, value: Any) -> None:
    """A split barrier's keys and plans: written and read only by this project's own workers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
    _fsync(tmp)
    os.replace(tmp, path)


def read_pickle(path: Path) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


def link_shard(src: Path, dst: Path) -> dict[str, Any]:
    """Publish an unchanged shard under a second name without decoding it (a hard link where the
    filesystem allows, else a copy); same {"rows", "sha256"} as write_rows."""
    import shutil

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
        _fsync(tmp)
    os.replace(tmp, dst)
    return {"rows": pq.ParquetFile(dst).metadata.num_rows, "sha256": file_sha256(dst)}


def _fsync(path: Path) -> None:
    # Data must be on disk before the rename publishes it, or a crash can leave a named but empty file.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
