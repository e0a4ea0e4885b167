"""What a worker process does with one task. Tasks are plain data (paths and the resolved step config):
workers rebuild steps from the registry and never receive pickled live objects.

- map task:   one input shard -> output shard i, rejects shard i, then stats i (the commit point).
- whole task: every input shard (barrier) or none (source) -> output cut into shards of `shard_size`.
- a split barrier's phases: keys task (one input shard -> keys i), decide task (every keys file -> plan
  per shard, then plans/_DECIDED.json), apply task (input shard i + plan i -> like a map task).
"""

from __future__ import annotations

import time
import traceback
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pipelines.core.registry import get_component
from pipelines.core.sample import Sample
from pipelines.core.shards import (link_shard, read_pickle, read_shard, to_row, write_json_atomic,
                                   write_pickle_atomic, write_rows)
from pipelines.core.step import Step, StepContext
from pipelines.core.store import StepDir, file_entry

# One built step per fingerprint per worker process, so a model loads once per worker, not once per shard.
_STEPS: dict[str, Step] = {}


class TaskError(RuntimeError):
    """A step raised inside a worker; carries the step, the shard and the worker's traceback."""


def _build_step(task: dict[str, Any]) -> Step:
    step = _STEPS.get(task["fingerprint"])
    if step is None:
        cls = get_component(task["component"])
        ctx = StepContext(
            step_name=task["step"],
            recipe_name=task["recipe"],
            fingerprint=task["fingerprint"],
            run_dir=Path(task["run_dir"]),
            llm_config=task["llm"],
            own_cache_part=task.get("cache") == "parts",
        )
        step = cls(cls.Params(**task["params"]), ctx)
        _STEPS[task["fingerprint"]] = step
    return step


def _read_all(paths: Iterable[str]) -> Iterator[Sample]:
    for p in paths:
        yield from read_shard(Path(p))


class _Counted:
    def __init__(self, it: Iterator[Sample]):
        self.it, self.n = it, 0

    def __iter__(self) -> Iterator[Sample]:
        for s in self.it:
            self.n += 1
            yield s


def _llm_stats(step: Step) -> dict[str, int]:
    client = step.ctx._llm
    return dict(client.stats()) if client is not None else {}


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    try:
        return _run(task)
    except Exception as e:  # re-raised with where it happened; the executor stops the run with it
        where = f"step {task['step']!r}" + (f" shard {task['shard']}" if task["type"] == "map" else "")
        raise TaskError(f"{where}: {type(e).__name__}: {e}\n{traceback.format_exc()}") from None
    finally:
        step = _STEPS.get(task["fingerprint"])
        if step is not None:
            step.ctx.end_task()


def _keys(step: Step, sd: StepDir, task: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    keys = step.keys(_read_all(task["inputs"]))
    write_pickle_atomic(sd.keys_file(task["shard"]), (keys, time.perf_counter() - started))
    return {"shard": task["shard"]}


def _decide(step: Step, sd: StepDir, task: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    step.ctx.counters.clear()
    n = task["n_shards"]
    keys, keys_seconds = zip(*(read_pickle(sd.keys_file(i)) for i in range(n))) if n else ((), ())
    plans = step.decide(list(keys))
    if len(plans) != n:
        raise RuntimeError(f"decide returned {len(plans)} plans for {n} shards")
    for i, plan in enumerate(plans):
        write_pickle_atomic(sd.plan_file(i), plan)
    seconds = time.perf_counter() - started + sum(keys_seconds)  # the keys tasks' time counts too
    stats = {"seconds": round(seconds, 4), "counters": dict(step.ctx.counters)}
    write_json_atomic(sd.root / "plans" / "_DECIDED.json", stats)  # written last: the plans' commit point
    return stats


def _link_through(sd: StepDir, task: dict[str, Any]) -> dict[str, Any]:
    i = task["shard"]
    started = time.perf_counter()
    out = link_shard(Path(task["inputs"][0]), sd.out(i))
    rej = write_rows(sd.rejects(i), [])
    stats = {"in": out["rows"], "out": out["rows"], "dropped": {}, "counters": {}, "shard": i,
             "seconds": round(time.perf_counter() - started, 4),
             "files": {"out": file_entry(sd.root, sd.out(i), out["rows"]),
                       "rejects": file_entry(sd.root, sd.rejects(i), rej["rows"])}}
    write_json_atomic(sd.stats_file(i), stats)
    return stats


def _run(task: dict[str, Any]) -> dict[str, Any]:
    step = _build_step(task)
    sd = StepDir(Path(task["step_root"]))
    if task["type"] == "keys":
        return _keys(step, sd, task)
    if task["type"] == "decide":
        return _decide(step, sd, task)
    if task["type"] == "apply" and step.passthrough:
        return _link_through(sd, task)
    started = time.perf_counter()
    llm_before = _llm_stats(step)
    step.ctx.counters.clear()
    source = _Counted(_read_all(task["inputs"]))
    dropped: Counter = Counter()
    out_rows: list[dict] = []
    rej_rows: list[dict] = []
    files: list[dict[str, Any]] = []
    n_out = 0
    whole = task["type"] == "whole"
    limit = task["shard_size"] if whole else None

    def flush() -> None:
        i = task["shard"] if not whole else len(files)
        out_meta = write_rows(sd.out(i), out_rows)
        rej_meta = write_rows(sd.rejects(i), rej_rows)
        files.append({
            "out": file_entry(sd.root, sd.out(i), out_meta["rows"]),
            "rejects": file_entry(sd.root, sd.rejects(i), rej_meta["rows"]),
        })
        out_rows.clear()
        rej_rows.clear()

    if task["type"] == "apply":
        stream = step.apply(iter(source), read_pickle(sd.plan_file(task["shard"])))
    else:
        stream = step.run(iter(source))
    for s in stream:
        if s.dropped:
            v = s.verdicts[-1]
            dropped[v.reason or v.filter] += 1
            rej_rows.append(to_row(s))
        else:
            n_out += 1
            out_rows.append(to_row(s))
        if limit and (len(out_rows) >= limit or len(rej_rows) >= limit):
            flush()
    if not whole or out_rows or rej_rows or not files:
        flush()

    llm_after = _llm_stats(step)
    counters = Counter(step.ctx.counters)
    for k, v in llm_after.items():
        counters[f"llm_{k}"] += v - llm_before.get(k, 0)
    stats = {
        "in": source.n,
        "out": n_out,
        "dropped": dict(dropped),
        "seconds": round(time.perf_counter() - started, 4),
        "counters": dict(counters),
    }
    if whole:
        return {"files": files, "stats": stats}
    stats["files"] = files[0]
    stats["shard"] = task["shard"]
    # Written last: the stats file is the shard's commit point (see StepDir.shard_stats).
    write_json_atomic(sd.stats_file(task["shard"]), stats)
    return stats
