"""Where an export comes from: a run's filter funnel, its recipe fingerprint, and exporting a finished run.

The funnel is read from the run directory alone (each step's merged stats in its _SUCCESS file), so an export
made long after the run still says how many samples each step received, kept and dropped, and why.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.core.sample import Sample, content_hash
from pipelines.core.shards import read_shard
from pipelines.core.store import StepDir, read_run_manifest
from pipelines.export.builder import ExportOptions, VersionBuilder
from pipelines.export.registry import Registry, VersionRef


def _ancestors(steps: dict[str, Any], name: str) -> set[str]:
    seen: set[str] = set()
    todo = list(steps[name]["after"])
    while todo:
        step = todo.pop()
        if step not in seen:
            seen.add(step)
            todo.extend(steps[step]["after"])
    return seen


def run_funnel(run_dir: Path, upto: str | None = None) -> list[dict[str, Any]]:
    """Per finished step (all, or `upto` and its ancestors), in run order: in, out and drops by reason."""
    manifest = read_run_manifest(run_dir)
    steps = manifest["steps"]
    wanted = _ancestors(steps, upto) | {upto} if upto else set(steps)
    funnel = []
    for name in manifest["order"]:
        if name not in wanted:
            continue
        done = StepDir(Path(run_dir) / steps[name]["dir"]).success()
        if done is None:
            continue
        stats = done["stats"]
        funnel.append({"step": name, "component": steps[name]["component"], "in": stats["in"],
                       "out": stats["out"], "dropped": stats.get("dropped", {})})
    return funnel


def run_origin(run_dir: Path, steps: list[str]) -> dict[str, Any]:
    """Recipe name, run directory and a fingerprint of the given (final) steps' fingerprints."""
    manifest = read_run_manifest(run_dir)
    fps = {s: manifest["steps"][s]["fingerprint"] for s in steps}
    return {"recipe": manifest["recipe"], "run_dir": str(run_dir), "fingerprint": content_hash(fps, 64),
            "steps": fps}


def final_samples(run_dir: Path, step: str | None = None) -> tuple[list[str], Iterator[Sample]]:
    """(steps read, their output samples) for a finished run: its final steps, or one named step."""
    manifest = read_run_manifest(run_dir)
    if manifest["status"] != "finished" and step is None:
        raise ValueError(f"run {run_dir} is {manifest['status']}, not finished: finish it (rerun its command) "
                         "or name a finished step with --step")
    names = [step] if step else manifest["final_steps"]
    dirs = []
    for name in names:
        if name not in manifest["steps"]:
            raise KeyError(f"no step {name!r} in run {run_dir}; steps: {', '.join(manifest['order'])}")
        sd = StepDir(Path(run_dir) / manifest["steps"][name]["dir"])
        if sd.success() is None:
            raise ValueError(f"step {name!r} of run {run_dir} is not finished")
        dirs.append(sd)

    def samples() -> Iterator[Sample]:
        for sd in dirs:
            for path in sd.output_paths():
                yield from read_shard(path)

    return names, samples()


def export_run(run_dir: Path, options: ExportOptions, registry: Registry,
               step: str | None = None) -> tuple[VersionRef, bool, VersionBuilder]:
    """Export a finished run's final samples as the next version of `options.name`."""
    from pipelines.export.writer import write_version

    names, samples = final_samples(run_dir, step)
    builder = VersionBuilder(options)
    for sample in samples:
        builder.add(sample)
    origin = run_origin(run_dir, names)
    funnel = run_funnel(run_dir, step)
    ref, reused = write_version(registry, builder, origin, funnel)
    return ref, reused, builder
