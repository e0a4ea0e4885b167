"""Everything a run report shows, read from a run directory alone.

Step counts and drop reasons come from each step's merged stats (the same numbers `refinery status`
prints). Samples come from the parquet shards through polars lazy scans: one scan per step's rejects
(each row dropped there, its reason the last verdict's) and one over the final steps' output (kept),
projected to the few columns the aggregations need, with provenance and persona fields pulled out of
their JSON strings by polars itself; Python objects are built only for the few thousand samples the
page's browser shows. A 100,000-sample run is a few hundred MB of Arrow, not of Python objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.cli_views import step_state
from pipelines.core.store import StepDir, read_run_manifest

# Persona attributes the report breaks samples down by (personas/schema.py has more, free-text ones).
PERSONA_ATTRIBUTES = ("domain", "region", "age_band", "expertise")
REPORT_COMPONENT = "report.html"


@dataclass
class RunData:
    run_dir: Path
    manifest: dict[str, Any]
    steps: list[dict[str, Any]]          # per step in run order: name, component, state, in, out, ...
    samples: pl.DataFrame                # one row per kept or dropped sample (see `_scan`)
    evals: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)

    @property
    def kept(self) -> pl.DataFrame:
        return self.samples.filter(pl.col("status") == "kept")


def _fields(json_col: str, names: tuple[str, ...], prefix: str = "") -> list[pl.Expr]:
    return [pl.col(json_col).str.json_path_match(f"$.{n}").fill_null("").alias(prefix + n) for n in names]


def _scan(paths: list[Path], status: str, step: str, component: str = "") -> pl.LazyFrame:
    """One row per sample. A generator that gives up on a seed drops the seed itself (kind "seed"), so
    such a row's process is the dropping step's component, and its function-calling case is in the
    verdict's details rather than in the sample's meta."""
    last = pl.col("verdicts").list.last()
    is_seed = pl.col("kind") == "seed"
    generator = pl.col("provenance").str.json_path_match("$.generator").fill_null("")
    case = pl.col("meta").str.json_path_match("$.case")
    if status == "dropped":
        generator = pl.when(is_seed).then(pl.lit(component)).otherwise(generator)
        case = case.fill_null(last.struct.field("details").str.json_path_match("$.case"))
    return pl.scan_parquet(paths).select(
        "id", "kind",
        pl.lit(status).alias("status"),
        pl.lit(step).alias("step"),
        (last.struct.field("reason").fill_null("") if status == "dropped" else pl.lit("")).alias("reason"),
        generator.alias("generator"),
        *_fields("provenance", ("model",)),
        case.fill_null("").alias("case"),
        *_fields("persona", ("id",) + PERSONA_ATTRIBUTES, prefix="persona_"),
        # The texts the diversity map embeds and the browser searches: every message, in order.
        pl.col("messages").list.eval(pl.element().struct.field("content")).list.join("\n").alias("text"),
        pl.col("messages").list.len().alias("turns"),
    )


def kept_steps(manifest: dict[str, Any]) -> list[str]:
    """The steps whose output is the run's result: the final steps, where a report step stands for the
    steps it reads (it passes them on unchanged, and its own output does not exist while it runs)."""
    out: list[str] = []
    todo = list(manifest["final_steps"])
    while todo:
        name = todo.pop(0)
        info = manifest["steps"][name]
        if info["component"] == REPORT_COMPONENT:
            todo[:0] = [a for a in info["after"] if a not in out]
        elif name not in out:
            out.append(name)
    return out


def _outputs(run_dir: Path, info: dict[str, Any]) -> list[Path]:
    sd = StepDir(run_dir / info["dir"])
    if sd.success() is not None:
        return [p for p in sd.output_paths() if p.exists()]
    return sorted((sd.root / "shards").glob("*.parquet"))


def _step_rows(run_dir: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name in manifest["order"]:
        info = manifest["steps"][name]
        if info["component"] == REPORT_COMPONENT:
            continue  # the page is not a stage of the data: while it is written, it is not finished
        state, stats = step_state(run_dir, info)
        stats = stats or {"in": 0, "out": 0, "seconds": 0.0, "dropped": {}, "counters": {}}
        counters = stats.get("counters", {})
        done = StepDir(run_dir / info["dir"]).success() or {}
        rows.append({"name": name, "component": info["component"], "kind": info["kind"], "state": state,
                     "in": stats["in"], "out": stats["out"], "seconds": round(stats["seconds"], 2),
                     "dropped": dict(sorted(stats["dropped"].items(), key=lambda kv: -kv[1])),
                     "llm": {k[4:]: v for k, v in counters.items() if k.startswith("llm_")},
                     "llm_spec": (done.get("spec") or {}).get("llm")})
    return rows


def _evals(run_dir: Path) -> dict[str, Any]:
    """Eval summaries (eval-STEP/summary.json) and before/after comparisons (compare-STEP.json)."""
    found: dict[str, Any] = {"summaries": {}, "comparisons": {}}
    for path in sorted(run_dir.glob("eval-*/summary.json")):
        found["summaries"][path.parent.name] = json.loads(path.read_text(encoding="utf-8"))
    for path in sorted(run_dir.glob("compare-*.json")):
        found["comparisons"][path.stem] = json.loads(path.read_text(encoding="utf-8"))
    return found


def _budget(manifest: dict[str, Any]) -> dict[str, Any]:
    llm = (manifest.get("resolved") or {}).get("llm") or {}
    return {k: llm[k] for k in ("max_total_tokens", "max_cost") if llm.get(k) is not None}


def collect(run_dir: Path) -> RunData:
    run_dir = Path(run_dir)
    manifest = read_run_manifest(run_dir)
    scans = []
    for name in manifest["order"]:
        paths = StepDir(run_dir / manifest["steps"][name]["dir"]).reject_paths()
        if paths:
            scans.append(_scan(paths, "dropped", name, manifest["steps"][name]["component"]))
    kept_from = kept_steps(manifest)
    kept = [p for name in kept_from for p in _outputs(run_dir, manifest["steps"][name])]
    if kept:
        # Two final steps may pass on the same samples (a writer and an export): each sample once.
        scans.append(_scan(kept, "kept", "+".join(kept_from)).unique("id", keep="first", maintain_order=True))
    samples = (pl.concat(scans).collect() if scans else _scan_schema())
    # A sample one final step passed on and another final step dropped (a writer keeps what an export's
    # validation drops) is reported once, as dropped, with the reason. (Only final steps: an exact
    # duplicate dropped upstream has the same id as the copy that was kept.)
    dropped_ids = samples.filter((pl.col("status") == "dropped") & pl.col("step").is_in(kept_from))["id"]
    samples = samples.filter((pl.col("status") == "dropped") | ~pl.col("id").is_in(dropped_ids.implode()))
    samples = samples.with_row_index("row")
    return RunData(run_dir, manifest, _step_rows(run_dir, manifest), samples, _evals(run_dir), _budget(manifest))


def _scan_schema() -> pl.DataFrame:
    cols = ["id", "kind", "status", "step", "reason", "generator", "model", "case",
            *(f"persona_{a}" for a in ("id",) + PERSONA_ATTRIBUTES), "text"]
    return pl.DataFrame({**{c: [] for c in cols}, "turns": []},
                        schema={**{c: pl.String for c in cols}, "turns": pl.UInt32})


def full_samples(run_dir: Path, data: RunData, rows: pl.DataFrame) -> list[dict[str, Any]]:
    """The complete samples behind some rows (for the browser): read back from their shards by id, per
    step, again as lazy scans filtered on the ids, so only those rows are decoded."""
    manifest = data.manifest
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for (status, step), group in rows.group_by(["status", "step"], maintain_order=True):
        ids = group["id"].to_list()
        if status == "dropped":
            paths = StepDir(run_dir / manifest["steps"][step]["dir"]).reject_paths()
        else:
            paths = [p for name in step.split("+") for p in _outputs(run_dir, manifest["steps"][name])]
        found = pl.scan_parquet(paths).filter(pl.col("id").is_in(ids)).unique("id", keep="first").collect()
        for r in found.iter_rows(named=True):
            out[(status, step, r["id"])] = r
    keys = [(r["status"], r["step"], r["id"]) for r in rows.iter_rows(named=True)]
    return [_browser_row(out[k], r) for k, r in zip(keys, rows.iter_rows(named=True)) if k in out]


def _browser_row(raw: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    messages = []
    for m in raw["messages"]:
        msg = {"role": m["role"], "content": m["content"] or ""}
        if m.get("reasoning"):
            msg["reasoning"] = m["reasoning"]
        if m.get("tool_calls"):
            msg["tool_calls"] = [{"name": c["name"], "arguments": json.loads(c["arguments"] or "{}")}
                                 for c in m["tool_calls"]]
        if m.get("name"):
            msg["name"] = m["name"]
        messages.append(msg)
    persona = json.loads(raw["persona"] or "null") or {}
    return {
        "id": row["id"], "kind": row["kind"], "status": row["status"], "step": row["step"],
        "reason": row["reason"], "generator": row["generator"], "case": row["case"],
        "persona": {a: persona.get(a, "") for a in PERSONA_ATTRIBUTES},
        "persona_description": persona.get("description", ""),
        "provenance": json.loads(raw["provenance"] or "{}"),
        "tools": [t.get("function", t).get("name", "?") for t in json.loads(raw["tools"] or "[]")],
        "messages": messages,
        # A drop's details say what went wrong (a generator's trace of its attempt, the failing check).
        "verdicts": [{"filter": v["filter"], "keep": v["keep"], "reason": v["reason"] or "",
                      "score": v["score"], "duplicate_of": v["duplicate_of"],
                      "details": "" if v["keep"] or v["details"] in (None, "{}") else _pretty(v["details"])}
                     for v in raw["verdicts"]],
    }


def _pretty(details: str, limit: int = 4000) -> str:
    text = json.dumps(json.loads(details), indent=1, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "\n…"
