"""The executor: schedules a validated recipe's steps over a pool of workers. It only schedules.

The pool is a process pool on this machine (`executor: local`, the default) or a Ray cluster
(`executor: ray`, `pipelines.core.ray_pool`); the loop below, the fingerprints and the run directory are
the same for both, so a run can move between them.

A step starts once all of its upstream steps are complete. Map steps fan out one task per input shard
(resumable per shard); source and barrier steps are one task each, except split barriers (see
`pipelines.core.step`): keys tasks per input shard, one decide task, then apply tasks per shard, each
phase resumable. Independent branches run side by side.
Before anything runs, finished steps are verified against their checksums: a damaged shard is recomputed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipelines.core.fingerprint import fingerprints
from pipelines.core.pools import make_pool
from pipelines.core.store import StepDir, merge_stats, read_run_manifest, write_run_manifest


class RunFailed(RuntimeError):
    pass


@dataclass
class RunResult:
    run_dir: Path
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> merged stats
    reused: list[str] = field(default_factory=list)
    repaired: dict[str, list[int]] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Executor:
    def __init__(self, recipe: Any, run_dir: Path, workers: int | None = None, progress: Any = None,
                 executor: str | None = None, address: str | None = None):
        self.recipe = recipe
        self.run_dir = Path(run_dir)
        self.workers = workers or recipe.workers or os.cpu_count() or 1
        self.kind = executor or recipe.executor
        self.address = address
        self.progress = progress  # object with start(step, total), advance(step, stats), finish(step, stats)
        self.fps = fingerprints(recipe)
        self.dirs = {n: StepDir.of(self.run_dir, n, fp) for n, fp in self.fps.items()}

    # ---- manifest ---------------------------------------------------------------------------------

    def _manifest(self, status: str, started: str) -> dict[str, Any]:
        r = self.recipe
        consumers = {a for s in r.steps.values() for a in s.after}
        return {
            "recipe": r.name,
            "recipe_path": str(r.path),
            "executor": self.kind,
            "resolved": r.raw,
            "status": status,
            "started": started,
            "updated": _now(),
            "order": r.order,
            "final_steps": [n for n in r.order if n not in consumers],
            "steps": {
                n: {
                    "component": s.component,
                    "kind": s.cls.kind,
                    "after": s.after,
                    "fingerprint": self.fps[n],
                    "dir": str(self.dirs[n].root.relative_to(self.run_dir)),
                }
                for n, s in r.steps.items()
            },
        }

    def _task(self, name: str, **extra: Any) -> dict[str, Any]:
        s = self.recipe.steps[name]
        return {
            "step": name, "component": s.component, "params": s.params, "llm": s.llm,
            "recipe": self.recipe.name, "fingerprint": self.fps[name], "run_dir": str(self.run_dir),
            "step_root": str(self.dirs[name].root), "shard_size": self.recipe.shard_size,
            # Ray's workers may sit on several machines: each writes a request-cache part of its own.
            "cache": "parts" if self.kind == "ray" else "shared", **extra,
        }

    # ---- run --------------------------------------------------------------------------------------

    def run(self) -> RunResult:
        os.environ["REFINERY_WORKERS"] = str(self.workers)  # llama.cpp sizes its threads per worker
        # Names this run's shared resources on a cluster (llm.ray_replicas); workers inherit it.
        os.environ["REFINERY_RUN"] = hashlib.sha256(str(self.run_dir.resolve()).encode()).hexdigest()[:12]
        pool = make_pool(self.kind, self.workers, self.address)  # PoolUnavailable: before anything is written
        self.run_dir.mkdir(parents=True, exist_ok=True)
        started = _now()
        write_run_manifest(self.run_dir, self._manifest("running", started))
        result = RunResult(self.run_dir)
        done: set[str] = set()
        for name in self.recipe.order:
            sd = self.dirs[name]
            damaged = sd.verify()
            if damaged:
                result.repaired[name] = damaged
                if _per_shard(self.recipe.steps[name].cls):
                    sd.invalidate(damaged)
                else:
                    sd.reset()
            elif sd.success() is not None:
                done.add(name)
                result.reused.append(name)
                result.steps[name] = sd.success()["stats"]

        self._prepare_shared_files()
        futures: dict[Any, tuple[str, int | str | None]] = {}
        # step -> shard -> stats (None while running); a split barrier's pending keys/decide phases
        open_shards = self._open = {}
        self._pending: dict[str, set[str]] = {}
        try:
            while len(done) < len(self.recipe.steps):
                for name in self.recipe.order:
                    if name in done or name in open_shards:
                        continue
                    if all(a in done for a in self.recipe.steps[name].after):
                        open_shards[name] = self._start(name, pool, futures)
                        if self._maybe_finish(name, open_shards, done, result):
                            continue
                if not futures:
                    continue
                for fut in pool.wait(list(futures)):
                    name, shard = futures.pop(fut)
                    out = pool.result(fut)  # a TaskError propagates and stops the run
                    self._count_spend(name, out)
                    if isinstance(shard, str):  # a split barrier's keys or decide phase
                        self._advance_split(name, shard, pool, futures)
                        self._maybe_finish(name, open_shards, done, result)
                        continue
                    if shard is None:
                        open_shards[name] = {0: out}
                    else:
                        open_shards[name][shard] = out
                    if self.progress:
                        self.progress.advance(name, out)
                    self._maybe_finish(name, open_shards, done, result)
        except BaseException as e:
            pool.kill()
            write_run_manifest(self.run_dir, self._manifest("failed", started))
            if isinstance(e, Exception):
                # The user sees one line (what failed, where); the worker's traceback goes to a file.
                detail = str(e)
                (self.run_dir / "error.log").write_text(detail + "\n", encoding="utf-8")
                first = detail.splitlines()[0] if detail else type(e).__name__
                raise RunFailed(f"{first} (traceback: {self.run_dir / 'error.log'})") from None
            raise
        pool.close()
        if self.kind == "ray" and self._uses_llm():  # every task is done: fold the workers' cache parts in
            from pipelines.llm.cache import init_cache

            init_cache(self.run_dir / "llm_cache.sqlite")
        write_run_manifest(self.run_dir, self._manifest("finished", started))
        return result

    def _prepare_shared_files(self) -> None:
        """Create what every worker shares before any worker starts, so none of them races to create it.

        Today that is the run directory's request cache (workers still open it safely on their own; this
        just takes the race off a fresh run's first seconds), with the cache parts of an earlier Ray run
        folded in; on Ray, also the driver's budget count, which starts from what the cache holds.
        """
        self._budget = None
        if self._uses_llm():
            # core does not import the LLM layer at module level
            from pipelines.llm.budget import DriverBudget
            from pipelines.llm.cache import init_cache, spent

            cache = self.run_dir / "llm_cache.sqlite"
            init_cache(cache)
            if self.kind == "ray":
                self._budget = DriverBudget(*spent(cache), where=str(self.run_dir))

    def _uses_llm(self) -> bool:
        return any(s.cls.uses_llm for s in self.recipe.steps.values())

    def _count_spend(self, name: str, out: Any) -> None:
        """Ray: the driver adds up what finished tasks spent and stops the run at a step's budget."""
        if self._budget is None or not isinstance(out, dict):
            return
        from pipelines.llm.errors import BudgetExceeded

        try:
            self._budget.add(self.recipe.steps[name].llm, out.get("stats", out).get("counters", {}))
        except BudgetExceeded as e:  # worded as when a worker raises it
            raise RunFailed(f"step {name!r}: BudgetExceeded: {e}") from None

    def _inputs(self, name: str) -> list[str]:
        return [str(p) for a in self.recipe.steps[name].after for p in self.dirs[a].output_paths()]

    def _start(self, name: str, pool: Any, futures: dict, phase: str = "map") -> dict[int, Any]:
        spec = self.recipe.steps[name]
        sd = self.dirs[name]
        inputs = self._inputs(name)
        if spec.cls.split and phase == "map":
            self._pending[name] = set()
            self._open[name] = {-1: None}  # not finished before its apply phase replaces this
            self._advance_split(name, "start", pool, futures)
            return self._open[name]
        if not _per_shard(spec.cls):
            sd.reset()  # whole tasks are all-or-nothing: never mix a partial earlier attempt in
            futures[pool.submit(self._task(name, type="whole", inputs=inputs), spec.resources)] = (name, None)
            if self.progress:
                self.progress.start(name, 1, 0)
            return {0: None}
        shards: dict[int, Any] = {}
        for i, path in enumerate(inputs):
            shards[i] = sd.shard_stats(i)
            if shards[i] is None:
                task = self._task(name, type=phase, inputs=[path], shard=i)
                futures[pool.submit(task, spec.resources)] = (name, i)
        if self.progress:
            self.progress.start(name, len(inputs), sum(v is not None for v in shards.values()))
        return shards

    def _advance_split(self, name: str, finished: str, pool: Any, futures: dict) -> None:
        """Move a split barrier on: keys for every shard without them, then decide, then apply."""
        spec, sd = self.recipe.steps[name], self.dirs[name]
        pending = self._pending[name]
        pending.discard(finished)
        if pending:
            return
        inputs = self._inputs(name)
        if sd.decided() is None and finished != "decide":
            if finished == "start":
                for i, path in enumerate(inputs):
                    if not sd.keys_file(i).exists():
                        task = self._task(name, type="keys", inputs=[path], shard=i)
                        futures[pool.submit(task, spec.resources)] = (name, f"keys {i}")
                        pending.add(f"keys {i}")
                if pending:
                    return
            task = self._task(name, type="decide", inputs=[], n_shards=len(inputs))
            futures[pool.submit(task, spec.resources)] = (name, "decide")
            pending.add("decide")
            return
        del self._pending[name]
        self._open[name] = self._start(name, pool, futures, phase="apply")

    def _maybe_finish(self, name: str, open_shards: dict, done: set, result: RunResult) -> bool:
        shards = open_shards[name]
        if any(v is None for v in shards.values()):
            return False
        spec = self.recipe.steps[name]
        step_spec = {"component": spec.component, "params": spec.params, "llm": spec.llm, "after": spec.after}
        if _per_shard(spec.cls):
            ordered = [shards[i] for i in sorted(shards)]
            if spec.cls.split:  # its decide task's time and counters belong to the step too
                ordered.append({"in": 0, "out": 0, "dropped": {}, **self.dirs[name].decided()})
            stats = {**merge_stats(ordered), "shards": len(shards)}
            summary = self.dirs[name].mark_success([shards[i]["files"] for i in sorted(shards)], stats, step_spec)
        else:
            out = shards[0]
            stats = {**out["stats"], "shards": len(out["files"])}
            summary = self.dirs[name].mark_success(out["files"], stats, step_spec)
        result.steps[name] = summary["stats"]
        done.add(name)
        del open_shards[name]
        if self.progress:
            self.progress.finish(name, summary["stats"])
        return True


def _per_shard(cls: Any) -> bool:
    """Steps whose output shards follow their input shards one to one (resumable per shard)."""
    return cls.kind == "map" or cls.split


def run_recipe(recipe: Any, run_dir: Path, workers: int | None = None, progress: Any = None,
               executor: str | None = None, address: str | None = None) -> RunResult:
    """Run (or resume) a recipe. `executor`: local or ray (default: the recipe's `executor:`, else local);
    `address`: the Ray cluster (default: a Ray started on this machine)."""
    return Executor(recipe, run_dir, workers, progress, executor, address).run()


def load_run(run_dir: Path) -> dict[str, Any]:
    return read_run_manifest(run_dir)
