"""Where the executor's tasks run: a process pool on this machine, or a Ray cluster (`ray_pool`).

A pool takes plain-data tasks (`pipelines.core.worker.run_task`) and the step's resources, and hands
results back in completion order; the executor's scheduling loop is the same for every pool, so steps,
fingerprints and the run directory are the same whichever runs them.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from pipelines.core.worker import run_task


class PoolUnavailable(RuntimeError):
    """The pool cannot start (Ray missing, no cluster at the address): one line for the user, exit 2."""


def _die_with_parent() -> None:
    # A worker must not outlive the run that started it: an orphan still writing shards (and asking the
    # model) while a resumed run starts would do work twice. PR_SET_PDEATHSIG = 1 on Linux.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass  # not Linux: orphans finish their shard and exit; writes are atomic either way


class ProcessPool:
    """`workers` spawned processes on this machine; resources are ignored (one task per process)."""

    def __init__(self, workers: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_die_with_parent)

    def submit(self, task: dict[str, Any], resources: dict[str, Any]) -> Future:
        return self._pool.submit(run_task, task)

    def wait(self, handles: list[Future]) -> list[Future]:
        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Future) -> dict[str, Any]:
        return handle.result()  # a TaskError propagates and stops the run

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def kill(self) -> None:
        procs = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.kill()  # stop in-flight tasks now; their shards were never committed


def make_pool(kind: str, workers: int, address: str | None = None) -> Any:
    if kind == "local":
        if address:
            raise PoolUnavailable("--address is for the ray executor; the local executor runs on this machine")
        return ProcessPool(workers)
    if kind == "ray":
        from pipelines.core.ray_pool import RayPool

        return RayPool(address, workers)
    raise PoolUnavailable(f"unknown executor {kind!r}; known: local, ray")
