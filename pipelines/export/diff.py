"""What changed between two versions of a dataset: rows added, removed and changed, per config.

Rows are matched by their `key`, a hash of the prompt side of the conversation (the tools and every
non-assistant turn; for a preference row, its prompt). So an answer edited in review shows up as *changed*
(with the fields that differ), while a new prompt is *added* and a dropped one *removed*. Rows whose content
is equal but that moved between train and validation are changed too ("split").
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipelines.export.registry import Registry, VersionRef

CONTENT_FIELDS = ("messages", "prompt", "chosen", "rejected", "tools", "score_chosen", "score_rejected",
                  "preference_source", "kind", "generator", "persona_id")


def _index(ref: VersionRef) -> pl.LazyFrame:
    """The version's index, rows that share a key numbered `n` in id order (so duplicates pair up)."""
    return (pl.scan_parquet(ref.path / "index.parquet").select("config", "key", "split", "id", "row_hash")
            .sort("config", "key", "id").with_columns(pl.int_range(pl.len()).over("config", "key").alias("n")))


def _rows(ref: VersionRef, config: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    rows = pl.scan_parquet(ref.path / "data" / config / "*.parquet").filter(pl.col("id").is_in(ids)).collect()
    return {r["id"]: r for r in rows.iter_rows(named=True)}


def diff_versions(registry: Registry, a: VersionRef, b: VersionRef, detail: int = 20) -> dict[str, Any]:
    """{"from", "to", "configs": {config: {added, removed, changed, unchanged}}, "counts": {...}}.

    `added`/`removed` list sample ids; `changed` lists {from_id, to_id, fields}; each list holds at most
    `detail` entries (the totals are in `n_added`, `n_removed`, `n_changed`).

    One polars full join of the two indexes on (config, key, n) classifies every row: only in b is added,
    only in a removed, in both with another row hash or split changed.
    """
    joined = (_index(a).join(_index(b), on=["config", "key", "n"], how="full", coalesce=True, suffix="_b")
              .sort("config", "key", "n").collect())
    result: dict[str, Any] = {"from": str(a), "to": str(b), "configs": {}}
    for (config,), rows in joined.group_by("config", maintain_order=True):
        both = rows.filter(pl.col("id").is_not_null() & pl.col("id_b").is_not_null())
        changed_rows = both.filter((pl.col("row_hash") != pl.col("row_hash_b")) | (pl.col("split") != pl.col("split_b")))
        added = rows.filter(pl.col("id").is_null())["id_b"].to_list()
        removed = rows.filter(pl.col("id_b").is_null())["id"].to_list()
        shown = changed_rows.head(detail)
        old, new = _rows(a, config, shown["id"].to_list()), _rows(b, config, shown["id_b"].to_list())
        changed = []
        for r in shown.iter_rows(named=True):
            before, after = old.get(r["id"], {}), new.get(r["id_b"], {})
            fields = [f for f in CONTENT_FIELDS if f in before and before.get(f) != after.get(f)]
            if r["split"] != r["split_b"]:
                fields.append(f"split ({r['split']} -> {r['split_b']})")
            changed.append({"from_id": r["id"], "to_id": r["id_b"], "fields": fields})
        result["configs"][config] = {
            "n_added": len(added), "n_removed": len(removed), "n_changed": len(changed_rows),
            "unchanged": len(both) - len(changed_rows),
            "added": added[:detail], "removed": removed[:detail], "changed": changed,
        }
    ma, mb = registry.manifest(a), registry.manifest(b)
    result["counts"] = {
        "rows": {c: [ma["counts"]["rows"].get(c, 0), mb["counts"]["rows"].get(c, 0)]
                 for c in sorted(set(ma["counts"]["rows"]) | set(mb["counts"]["rows"]))},
        "by_kind": {k: [ma["counts"]["by_kind"].get(k, 0), mb["counts"]["by_kind"].get(k, 0)]
                    for k in sorted(set(ma["counts"]["by_kind"]) | set(mb["counts"]["by_kind"]))},
    }
    result["same_content"] = ma["content_hash"] == mb["content_hash"]
    return result
