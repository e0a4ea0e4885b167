"""The run directory: one folder per step, named by the step's content fingerprint.

    RUN_DIR/run.json                     the resolved recipe, each step's fingerprint and folder, run state
    RUN_DIR/llm_cache.sqlite             per-request model cache shared by every run of this directory
    RUN_DIR/llm_cache.parts/             Ray only: each worker's own cache part, folded in by the driver
    RUN_DIR/steps/NAME-FP/shards/N.parquet   output shards
    RUN_DIR/steps/NAME-FP/rejects/N.parquet  dropped samples with the verdicts that dropped them
    RUN_DIR/steps/NAME-FP/stats/N.json       per-shard stats and the sha256 of both files (map steps)
    RUN_DIR/steps/NAME-FP/keys/N.pkl         a split barrier's keys per input shard
    RUN_DIR/steps/NAME-FP/plans/N.pkl        its decision per shard; plans/_DECIDED.json commits them
    RUN_DIR/steps/NAME-FP/_SUCCESS           the step is complete: every shard with its checksum, merged stats

A shard counts as done only when its stats file exists and both files still match their checksums, so a
run killed at any point (or a shard damaged on disk) resumes by recomputing exactly what is missing.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.core.shards import file_sha256, write_json_atomic

SUCCESS = "_SUCCESS"


@dataclass(frozen=True)
class StepDir:
    root: Path

    @classmethod
    def of(cls, run_dir: Path, step: str, fingerprint: str) -> StepDir:
        return cls(Path(run_dir) / "steps" / f"{step}-{fingerprint[:16]}")

    def out(self, i: int) -> Path:
        return self.root / "shards" / f"{i:05d}.parquet"

    def rejects(self, i: int) -> Path:
        return self.root / "rejects" / f"{i:05d}.parquet"

    def stats_file(self, i: int) -> Path:
        return self.root / "stats" / f"{i:05d}.json"

    def keys_file(self, i: int) -> Path:
        return self.root / "keys" / f"{i:05d}.pkl"

    def plan_file(self, i: int) -> Path:
        return self.root / "plans" / f"{i:05d}.pkl"

    def decided(self) -> dict[str, Any] | None:
        """A split barrier's decide stats once every plan is written (the plans' commit point)."""
        path = self.root / "plans" / "_DECIDED.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    # ---- completion state -------------------------------------------------------------------------

    def success(self) -> dict[str, Any] | None:
        path = self.root / SUCCESS
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def shard_stats(self, i: int) -> dict[str, Any] | None:
        """The stats of shard i if it is complete and intact; None if it must be (re)computed."""
        path = self.stats_file(i)
        if not path.exists():
            return None
        try:
            stats = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None  # torn stats file: the shard is recomputed
        return stats if self._intact(stats["files"]) else None

    def verify(self) -> list[int]:
        """Check every shard of a finished step; return the indices that are missing or damaged."""
        done = self.success()
        if done is None:
            return []
        return [i for i, files in enumerate(done["shards"]) if not self._intact(files)]

    def _intact(self, files: dict[str, dict[str, Any]]) -> bool:
        for name, info in files.items():
            path = self.root / info["path"]
            if not path.exists() or file_sha256(path) != info["sha256"]:
                return False
        return True

    def invalidate(self, shards: list[int]) -> None:
        """Forget damaged shards (and the step's completion) so the next run recomputes them."""
        (self.root / SUCCESS).unlink(missing_ok=True)
        for i in shards:
            self.stats_file(i).unlink(missing_ok=True)

    def reset(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)

    def mark_success(self, files: list[dict[str, Any]], stats: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        summary = {"spec": spec, "shards": files, "stats": stats}
        write_json_atomic(self.root / SUCCESS, summary)
        return summary

    def output_paths(self) -> list[Path]:
        done = self.success()
        if done is None:
            raise RuntimeError(f"step folder {self.root} is not complete")
        return [self.root / files["out"]["path"] for files in done["shards"]]

    def reject_paths(self) -> list[Path]:
        done = self.success()
        paths = [self.root / f["rejects"]["path"] for f in done["shards"]] if done else sorted(
            (self.root / "rejects").glob("*.parquet"))
        return [p for p in paths if p.exists()]


def file_entry(step_root: Path, path: Path, rows: int) -> dict[str, Any]:
    return {"path": str(path.relative_to(step_root)), "rows": rows, "sha256": file_sha256(path)}


def merge_stats(shard_stats: list[dict[str, Any]]) -> dict[str, Any]:
    dropped: Counter = Counter()
    counters: Counter = Counter()
    total = {"in": 0, "out": 0, "seconds": 0.0}
    for s in shard_stats:
        total["in"] += s["in"]
        total["out"] += s["out"]
        total["seconds"] += s["seconds"]
        dropped.update(s["dropped"])
        counters.update(s.get("counters", {}))
    return {**total, "shards": len(shard_stats), "dropped": dict(dropped), "counters": dict(counters)}


def write_run_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    write_json_atomic(Path(run_dir) / "run.json", manifest)


def read_run_manifest(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no run.json)")
    return json.loads(path.read_text(encoding="utf-8"))
