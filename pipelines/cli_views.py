"""What `refinery status` and `refinery inspect` print, computed from a run directory alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pipelines.core.sample import Sample
from pipelines.core.shards import from_row, read_shard
from pipelines.core.store import StepDir, merge_stats, read_run_manifest


def step_state(run_dir: Path, info: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    sd = StepDir(run_dir / info["dir"])
    done = sd.success()
    if done is not None:
        return "done", done["stats"]
    partial = [sd.shard_stats(int(p.stem)) for p in sorted((sd.root / "stats").glob("*.json"))]
    partial = [s for s in partial if s]
    if partial:
        return f"partial ({len(partial)} shards)", merge_stats(partial)
    return "pending", None


def status_table(run_dir: Path) -> Table:
    """Per step: state, the filter funnel (in -> out, drops by reason), model use, time; then model use
    summed per backend."""
    from pipelines.llm.accounting import format_llm_counters, totals_by_backend

    manifest = read_run_manifest(run_dir)
    table = Table(title=f"{manifest['recipe']} — {manifest['status']} (updated {manifest['updated']})")
    for col in ("step", "component", "state", "in", "out", "dropped (by reason)", "model", "seconds"):
        table.add_column(col, justify="right" if col in ("in", "out", "seconds") else "left")
    per_backend = {}
    for name in manifest["order"]:
        info = manifest["steps"][name]
        state, stats = step_state(run_dir, info)
        if stats is None:
            table.add_row(name, info["component"], state, *[""] * 5)
            continue
        c = stats.get("counters", {})
        drops = ", ".join(f"{k}: {v}" for k, v in sorted(stats["dropped"].items())) or "-"
        table.add_row(name, info["component"], state, str(stats["in"]), str(stats["out"]), drops,
                      format_llm_counters(c), f"{stats['seconds']:.1f}")
        done = StepDir(run_dir / info["dir"]).success()
        per_backend[name] = ((done or {}).get("spec", {}).get("llm"), c)
    for backend, counters in totals_by_backend(per_backend).items():
        table.add_section()
        table.add_row(f"[b]{backend}[/]", "all steps", "", "", "", "", format_llm_counters(counters), "")
    return table


def _step_dir(run_dir: Path, manifest: dict[str, Any], step: str) -> StepDir:
    if step not in manifest["steps"]:
        raise KeyError(f"no step {step!r} in this run; steps: {', '.join(manifest['order'])}")
    return StepDir(run_dir / manifest["steps"][step]["dir"])


def iter_samples(run_dir: Path, step: str | None, rejected: bool, id_prefix: str | None = None) -> Iterator[Sample]:
    """The samples of the final steps (or one step, or the rejects); with `id_prefix`, only those whose id
    starts with it, found by a polars scan per shard, so looking one sample up in a big run decodes that
    row alone instead of building every sample."""
    manifest = read_run_manifest(run_dir)
    steps = [step] if step else (manifest["order"] if rejected else manifest["final_steps"])
    for name in steps:
        sd = _step_dir(run_dir, manifest, name)
        if rejected:
            paths = sd.reject_paths()
        else:
            paths = sorted((sd.root / "shards").glob("*.parquet")) if sd.success() is None else sd.output_paths()
        for p in paths:
            if id_prefix is None:
                yield from read_shard(p)
                continue
            import polars as pl

            found = pl.scan_parquet(p).filter(pl.col("id").str.starts_with(id_prefix)).collect()
            yield from (from_row(r) for r in found.iter_rows(named=True))


def show_sample(console: Console, s: Sample, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(s.to_dict(), ensure_ascii=False))
        return
    p = s.provenance
    console.rule(f"[bold]{s.id}[/] {s.kind} · {p.get('generator', '?')} · {p.get('model', '')}")
    if s.persona:
        console.print(f"[dim]persona:[/] {s.persona.get('description', s.persona)}")
    for m in s.messages:
        if m.reasoning:
            console.print(f"[magenta]{m.role} (thinking):[/] {m.reasoning}", markup=True, highlight=False)
        calls = " ".join(f"{c.name}({json.dumps(c.arguments, ensure_ascii=False)})" for c in m.tool_calls)
        console.print(f"[cyan]{m.role}:[/] ", end="")
        console.print(m.content + (f" {calls}" if calls else ""), markup=False, highlight=False)
    for v in s.verdicts:
        if not v.keep:
            dup = f" (duplicate of {v.duplicate_of})" if v.duplicate_of else ""
            extra = f" {json.dumps(v.details, ensure_ascii=False)[:200]}" if v.details else ""
            console.print(f"[red]dropped by {v.filter}: {v.reason}{dup}[/]{extra}", highlight=False)


def comparison_tables(run_dir: Path) -> list[Table]:
    """One table per eval.compare step that has finished: per suite, before -> after with its interval."""
    tables = []
    for path in sorted(run_dir.glob("compare-*.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        t = Table(title=f"{path.stem}: the student before and after training (95% paired-bootstrap interval)")
        for col in ("suite", "n", "before", "after", "delta", "interval", "fixed", "broken"):
            t.add_column(col, justify="left" if col == "suite" else "right")
        for suite, r in result.items():
            t.add_row(suite, str(r["n"]), f"{r['before']:.3f}", f"{r['after']:.3f}", f"{r['delta']:+.3f}",
                      f"[{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}]", str(len(r["fixed"])), str(len(r["broken"])))
        tables.append(t)
    return tables
