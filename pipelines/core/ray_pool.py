"""The executor's tasks as Ray tasks: the same plain-data tasks the process pool runs, on a Ray cluster.

- Each map shard is one Ray task and each source or barrier one task, with the step's `resources:`
  (`num_cpus`, default 1; `num_gpus`; `memory` in bytes). The driver only schedules.
- Ray reuses a worker process for the tasks it runs (CPU tasks; `max_calls` unlimited), and a worker keeps
  one built step per fingerprint (`pipelines.core.worker`), so a model loads once per worker process.
- A task lost with its node (or a killed worker) is run again by Ray elsewhere (`max_retries`); map tasks
  write their shard atomically and commit with the stats file, so a rerun writes the same files. An error
  raised by a step is not retried: it stops the run as under the local executor.
- The run directory and the request cache must be on a path every node sees (a shared filesystem); the
  project must be importable on every node (installed, or this checkout on the shared path: PYTHONPATH is
  passed to the workers).

Connecting is checked before Ray is asked (`ray.init` retries an unreachable address for minutes), and a
step asking for more than any node has fails at once instead of waiting forever.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from pipelines.core.pools import PoolUnavailable
from pipelines.core.worker import TaskError, run_task

ROOT = Path(__file__).resolve().parents[2]
_PASSED_ENV = ("REFINERY_", "HF_", "TRANSFORMERS_", "SENTENCE_TRANSFORMERS_")


def _reachable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            return True
    except (OSError, ValueError):
        return False


def worker_env() -> dict[str, str]:
    # REFINERY_WORKERS (llama.cpp sizes its threads per worker) is among them: the executor sets it.
    env = {k: v for k, v in os.environ.items() if k.startswith(_PASSED_ENV)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env


class RayPool:
    def __init__(self, address: str | None, workers: int) -> None:
        try:
            import ray
        except ImportError:
            raise PoolUnavailable("the ray executor needs Ray: pip install -e '.[ray]'") from None
        self.ray = ray
        self.owned = False  # shut down only a Ray this pool started, never the caller's
        if address and address != "auto" and not address.startswith("ray://") and not _reachable(address):
            raise PoolUnavailable(f"no Ray cluster at {address} (nothing answers there; start one with "
                                  f"`ray start --head`, or omit --address to run Ray on this machine)")
        if ray.is_initialized():
            if address:
                raise PoolUnavailable("this process is already connected to a Ray cluster; run without "
                                      "--address to use it, or from a fresh process")
        else:
            kwargs: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False,
                                      "runtime_env": {"env_vars": worker_env()}}
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = workers
            try:
                ray.init(**kwargs)
            except ConnectionError as e:
                raise PoolUnavailable(f"no Ray cluster at {address}: {str(e).splitlines()[0]}") from None
            self.owned = True
        self._largest = self._largest_node()
        self._task = ray.remote(max_retries=3, retry_exceptions=False)(run_task)
        self._live: set = set()

    def _largest_node(self) -> dict[str, float]:
        nodes = [n["Resources"] for n in self.ray.nodes() if n.get("Alive")]
        return {k: max(n.get(k, 0) for n in nodes) for k in ("CPU", "GPU", "memory")} if nodes else {}

    def submit(self, task: dict[str, Any], resources: dict[str, Any]) -> Any:
        cpus, gpus = resources.get("num_cpus", 1), resources.get("num_gpus", 0)
        memory = resources.get("memory")
        for want, key, label in ((cpus, "CPU", "num_cpus"), (gpus, "GPU", "num_gpus"), (memory, "memory", "memory")):
            if want and want > self._largest.get(key, 0):
                raise PoolUnavailable(f"step {task['step']!r} asks {label}={want}, but no node of the cluster has "
                                      f"that much (largest: {self._largest.get(key, 0):g}); it would wait forever")
        options: dict[str, Any] = {"num_cpus": cpus, "num_gpus": gpus}
        if memory:
            options["memory"] = memory
        ref = self._task.options(**options).remote(task)
        self._live.add(ref)
        return ref

    def wait(self, handles: list[Any]) -> list[Any]:
        ready, _ = self.ray.wait(handles, num_returns=1)
        return ready

    def result(self, handle: Any) -> dict[str, Any]:
        self._live.discard(handle)
        try:
            return self.ray.get(handle)
        except self.ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            raise cause if isinstance(cause, TaskError) else TaskError(str(e).splitlines()[0]) from None
        except self.ray.exceptions.RayError as e:  # a worker or node lost more often than Ray retries
            raise TaskError(f"Ray lost the task: {type(e).__name__}: {str(e).splitlines()[0]}") from None

    def close(self) -> None:
        from pipelines.llm.ray_replicas import kill_replicas  # engine replicas steps started (llm.ray_replicas)

        kill_replicas()
        if self.owned:
            self.ray.shutdown()

    def kill(self) -> None:
        for ref in list(self._live):
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # already finished or gone: nothing left to stop
                pass
        self._live.clear()
        self.close()
