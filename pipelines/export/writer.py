"""Write a built dataset version into the registry: parquet per config and split, index, manifest, card.

The parquet schema is fixed (not inferred from the rows), so every file of every version has the same
columns and types whatever its rows happen to contain, and `datasets.load_dataset` reads them as one table.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pipelines.core.sample import content_hash
from pipelines.core.shards import file_sha256
from pipelines.export.builder import VersionBuilder, now
from pipelines.export.card import dataset_card
from pipelines.export.registry import Registry, VersionRef

MANIFEST_FORMAT = "refinery-dataset/1"
ROWS_PER_FILE = 50_000


def _schemas(text: bool) -> dict[str, Any]:
    import pyarrow as pa

    s = pa.string()
    call = pa.struct([("id", s), ("type", s), ("function", pa.struct([("name", s), ("arguments", s)]))])
    message = pa.struct([("role", s), ("content", s), ("reasoning", s), ("thinking", s),
                         ("tool_calls", pa.list_(call)), ("name", s), ("tool_call_id", s)])
    conversation = pa.list_(message)
    meta = [("id", s), ("key", s), ("kind", s), ("generator", s), ("persona_id", s)]
    sft = [*meta, ("messages", conversation), ("tools", s)] + ([("text", s)] if text else [])
    pref = [*meta, ("prompt", conversation), ("chosen", conversation), ("rejected", conversation), ("tools", s),
            ("score_chosen", pa.float64()), ("score_rejected", pa.float64()), ("preference_source", s)]
    pref += [("text_chosen", s), ("text_rejected", s)] if text else []
    return {"sft": pa.schema(sft), "preference": pa.schema(pref)}


def _write_parquet(path: Path, table: Any) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")


def row_hashes(tables: dict[str, dict[str, list[dict[str, Any]]]]) -> list[tuple[str, str, str, str, str]]:
    """(config, split, id, key, row_hash) for every row, in file order."""
    return [(config, split, row["id"], row["key"], content_hash(row, 32))
            for config, splits in sorted(tables.items()) for split, rows in sorted(splits.items()) for row in rows]


def version_content_hash(index: list[tuple[str, str, str, str, str]]) -> str:
    h = hashlib.sha256()
    for config, split, _, _, row_hash in sorted(index):
        h.update(f"{config}\t{split}\t{row_hash}\n".encode())
    return h.hexdigest()


def write_version(registry: Registry, builder: VersionBuilder, origin: dict[str, Any],
                  funnel: list[dict[str, Any]]) -> tuple[VersionRef, bool]:
    """(version, reused). An export whose rows equal the latest version's (and with the same review
    snapshot) returns that version instead of publishing a duplicate: rerunning an export is harmless."""
    opts = builder.options
    tables, groups = builder.split()
    if not tables:
        raise ValueError(f"nothing to export for {opts.name}: all {builder.samples_in} samples were dropped "
                         f"({dict(builder.dropped) or 'no input'})")
    index = row_hashes(tables)
    digest = version_content_hash(index)
    snapshot = builder.review_snapshot()
    latest = registry.latest(opts.name)
    if latest is not None:
        previous = registry.manifest(latest)
        if previous["content_hash"] == digest and previous.get("review_snapshot") == snapshot:
            return latest, True
    schemas = _schemas(bool(opts.text))

    def build(folder: Path, number: int) -> dict[str, Any]:
        import pyarrow as pa

        files, configs = [], {}
        for config, splits in sorted(tables.items()):
            configs[config] = {"columns": schemas[config].names, "splits": {}}
            for split, rows in sorted(splits.items()):
                n_files = max(1, -(-len(rows) // ROWS_PER_FILE))
                entries = []
                for i in range(n_files):
                    rel = f"data/{config}/{split}-{i:05d}-of-{n_files:05d}.parquet"
                    chunk = rows[i * ROWS_PER_FILE:(i + 1) * ROWS_PER_FILE]
                    _write_parquet(folder / rel, pa.Table.from_pylist(chunk, schema=schemas[config]))
                    entries.append({"path": rel, "rows": len(chunk), "sha256": file_sha256(folder / rel)})
                configs[config]["splits"][split] = {"rows": len(rows), "files": [e["path"] for e in entries]}
                files.extend(entries)
        columns = ("config", "split", "id", "key", "row_hash")
        _write_parquet(folder / "index.parquet", pa.table({c: [r[i] for r in index] for i, c in enumerate(columns)}))
        files.append({"path": "index.parquet", "rows": len(index), "sha256": file_sha256(folder / "index.parquet")})
        manifest = {
            "format": MANIFEST_FORMAT,
            "name": opts.name,
            "version": f"v{number}",
            "parent": latest.tag if latest else None,
            "created": now(),
            "description": opts.description,
            "origin": origin,
            "review_snapshot": snapshot,
            "content_hash": digest,
            "configs": configs,
            "splits": {"validation_share": opts.validation, "group_by": list(opts.split_by),
                       "seed": opts.split_seed, "groups": groups},
            "text": opts.text,
            "chat_format": opts.chat_format,
            "template_date": opts.template_date,
            "counts": {"rows": {c: sum(len(r) for r in s.values()) for c, s in sorted(tables.items())},
                       **builder.counts()},
            "funnel": funnel,
            "files": files,
        }
        card = folder / "README.md"
        card.write_text(dataset_card(manifest), encoding="utf-8")
        files.append({"path": "README.md", "rows": None, "sha256": file_sha256(card)})
        return manifest

    return registry.create(opts.name, build), False
