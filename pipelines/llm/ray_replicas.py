"""Generation on Ray engine replicas (`llm.ray_replicas: N`, backend vllm or transformers): N long-lived Ray
actors each hold one engine (one vLLM engine on one GPU, or one transformers model), and a step's
requests are cut into batches of `batch_size` that the replicas answer in parallel (`ray.util.ActorPool`);
the step's own process only dispatches, validates and caches. For a GPU cluster: `executor: ray`, the
generation step on CPU workers, `llm: {backend: vllm, ray_replicas: <GPUs>}`.

The replicas run the very engine classes the in-process backends run (`VLLMClient._run`,
`TransformersClient._run`) on the same items (request and per-completion seed), and this client keeps the
engine's model id, so answers, token counts and request-cache entries are the in-process backend's: a run
moves onto a cluster without invalidating its cache. Structured-output validation, retries and LFM2
parsing stay here (`BatchBackend`), once per completion, whichever replica answered.

Why actors and not Ray Data (`map_batches` over an engine class, or `ray.data.llm`'s vLLM processor):
Ray Data starts a fresh actor pool, so loads the model again, for every dataset it executes, and a
Refinery step sends one batch per generation stage per shard: with vLLM that is an engine start (tens of
seconds) per stage per shard. A Ray Data version of this client passed the same test and was dropped for
that reason. `ray.data.llm`'s processor also cannot pass `tools=` through its chat-template stage and
returns no finish reason (which decides whether a cut-short JSON answer is retried).

Tested here with the transformers engine on CPU (tests/llm/test_ray_replicas.py); the vLLM replica is the
same code with VLLMClient and one GPU per actor, and is not tested on this project's machines (no GPU).
A replica lost with its node is restarted by Ray and its batch retried (`max_restarts`,
`max_task_retries`). Ray: inside a Ray task (`executor: ray`) the cluster is already there; elsewhere
`ray.init()` connects to RAY_ADDRESS or starts Ray on this machine, and close() shuts it down again.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from pipelines.llm.batch_backend import BatchBackend, Item
from pipelines.llm.client import Completion, LLMConfig


def _namespace() -> str:
    # One namespace per run directory (the executor sets REFINERY_RUN), so ending one run never stops
    # another run's replicas on a shared cluster.
    return f"refinery-replicas-{os.environ.get('REFINERY_RUN', 'default')}"


class _Replica:
    def __init__(self, engine: type, config: dict[str, Any]) -> None:
        self.engine = engine(LLMConfig(**config))

    def run(self, items: list[Item]) -> list[Completion]:
        return self.engine._run(items)


class RayReplicasClient(BatchBackend):
    def __init__(self, engine: type, config: LLMConfig) -> None:
        super().__init__(config)
        self.engine = engine
        # The engine object is built here only for its identity (checkpoint id): it loads nothing until _run.
        self.model_id = engine(config).model_id
        # Requests per round: enough to keep every replica busy, few enough that answers reach the cache
        # (and a killed run keeps them) as the step goes.
        self.chunk = 4 * config.batch_size * config.ray_replicas
        self._actors: list[Any] = []
        self._owned = False

    def _pool(self) -> Any:
        import ray
        from ray.util import ActorPool

        if not ray.is_initialized():
            from pipelines.core.ray_pool import worker_env

            ray.init(log_to_driver=False, include_dashboard=False, runtime_env={"env_vars": worker_env()})
            self._owned = True
        if not self._actors:
            c = self.config
            gpu = self.engine.__name__ == "VLLMClient" or c.device.startswith("cuda")
            engine_config = c.model_copy(update={"ray_replicas": None}).model_dump()
            # Named, so every task of the step (on any node) shares the same N replicas instead of starting
            # N each and waiting on each other's GPUs; detached, so they outlive the task that started them.
            # The run's driver kills them when the run ends (RayPool.close).
            # GPU replicas reserve no CPU, so step tasks filling a GPU node's CPUs cannot starve them.
            key = hashlib.sha256(json.dumps([self.model_id, engine_config], sort_keys=True).encode()).hexdigest()[:12]
            actor = ray.remote(num_cpus=0 if gpu else 1, num_gpus=1 if gpu else 0, max_restarts=3,
                               max_task_retries=3)(_Replica)
            self._actors = [actor.options(name=f"{key}-{i}", namespace=_namespace(), get_if_exists=True,
                                          lifetime="detached").remote(self.engine, engine_config)
                            for i in range(c.ray_replicas)]
        return ActorPool(self._actors)

    def _run(self, items: list[Item]) -> list[Completion]:
        size = self.config.batch_size
        batches = [items[i:i + size] for i in range(0, len(items), size)]
        out: list[Completion] = []
        for completions in self._pool().map(lambda a, batch: a.run.remote(batch), batches):  # in order
            out.extend(completions)
        return out

    def close(self) -> None:
        # Shared replicas stay up for the step's other tasks; whoever started Ray (the run's driver, or
        # this client outside a cluster) takes them down.
        self._actors = []
        if self._owned:
            kill_replicas()
            import ray

            ray.shutdown()
            self._owned = False


def kill_replicas() -> None:
    """Stop this run's engine replicas on the connected cluster (the end of a run)."""
    import ray

    namespace = _namespace()
    for a in ray.util.list_named_actors(all_namespaces=True):
        if a["namespace"] == namespace:
            try:
                ray.kill(ray.get_actor(a["name"], namespace=namespace))
            except ValueError:
                pass  # already gone
