"""What changed between two versions of a dataset: rows added, removed and changed, per config.

Rows are matched by their `key`, a hash of the prompt side of the conversation (the tools and every
non-assistant turn; for a preference row, its prompt). So an answer edited in review shows up as *changed*
(with the fields that differ), while a new prompt is *added* and a dropped one *removed*. Rows whose content
is equal but that moved between train and validation are changed too ("split").
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pipelines.export.registry import Registry, VersionRef

CONTENT_FIELDS = ("messages", "prompt", "chosen", "rejected", "tools", "score_chosen", "score_rejected",
                  "preference_source", "kind", "generator", "persona_id")


def _index(ref: VersionRef) -> dict[str, dict[tuple[str, int], tuple[str, str, str]]]:
    """{config: {(key, n): (split, id, row_hash)}}; n numbers rows that share a key, in id order."""
    import pyarrow.parquet as pq

    rows = pq.read_table(ref.path / "index.parquet").to_pylist()
    by_key: dict[str, dict[str, list[tuple[str, str, str]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_key[r["config"]][r["key"]].append((r["split"], r["id"], r["row_hash"]))
    out: dict[str, dict[tuple[str, int], tuple[str, str, str]]] = {}
    for config, keys in by_key.items():
        out[config] = {(k, n): v for k, vs in keys.items() for n, v in enumerate(sorted(vs, key=lambda t: t[1]))}
    return out


def _rows(ref: VersionRef, config: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    if not ids:
        return {}
    table = ds.dataset(ref.path / "data" / config, format="parquet").to_table(
        filter=pc.field("id").isin(sorted(ids)))
    return {r["id"]: r for r in table.to_pylist()}


def diff_versions(registry: Registry, a: VersionRef, b: VersionRef, detail: int = 20) -> dict[str, Any]:
    """{"from", "to", "configs": {config: {added, removed, changed, unchanged}}, "counts": {...}}.

    `added`/`removed` list sample ids; `changed` lists {from_id, to_id, fields}; each list holds at most
    `detail` entries (the totals are in `n_added`, `n_removed`, `n_changed`).
    """
    ia, ib = _index(a), _index(b)
    result: dict[str, Any] = {"from": str(a), "to": str(b), "configs": {}}
    for config in sorted(set(ia) | set(ib)):
        ra, rb = ia.get(config, {}), ib.get(config, {})
        added = [rb[k][1] for k in sorted(set(rb) - set(ra))]
        removed = [ra[k][1] for k in sorted(set(ra) - set(rb))]
        changed_keys = [k for k in sorted(set(ra) & set(rb)) if ra[k] != rb[k] and
                        (ra[k][2] != rb[k][2] or ra[k][0] != rb[k][0])]
        shown = changed_keys[:detail]
        old = _rows(a, config, {ra[k][1] for k in shown})
        new = _rows(b, config, {rb[k][1] for k in shown})
        changed = []
        for k in shown:
            before, after = old.get(ra[k][1], {}), new.get(rb[k][1], {})
            fields = [f for f in CONTENT_FIELDS if f in before and before.get(f) != after.get(f)]
            if ra[k][0] != rb[k][0]:
                fields.append(f"split ({ra[k][0]} -> {rb[k][0]})")
            changed.append({"from_id": ra[k][1], "to_id": rb[k][1], "fields": fields})
        result["configs"][config] = {
            "n_added": len(added), "n_removed": len(removed), "n_changed": len(changed_keys),
            "unchanged": len(set(ra) & set(rb)) - len(changed_keys),
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
