"""Steps: small generators over samples.

There are three kinds, and the executor treats them differently only in how it schedules them:

- source:  no input; yields samples (personas, seed files). Runs as one task; its output is cut into shards.
- map:     one input shard in, one output shard out; runs in parallel over shards and resumes per shard.
- barrier: sees its whole input as one stream (dedup, diversity, writers); runs as one task.
  A barrier that only needs a small key per sample to decide (exact dedup, a writer) is `split`: it
  implements keys / decide / apply instead of run, and the executor runs `keys` and `apply` per input
  shard in parallel and only `decide` once over every shard's keys, so reading and writing samples (most
  of a cheap step's cost) scales with workers, as datatrove's multi-stage dedup does.

A step drops a sample by yielding it with a verdict whose keep is False (see `Sample.with_verdict`); the
executor routes it to the step's rejects, so every drop has a recorded reason. Yielding nothing for an
input is not allowed for map steps: the executor counts it as a lost sample and fails the shard.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from pipelines.core.sample import Sample

if TYPE_CHECKING:  # the LLM layer is optional for steps that do not call a model
    from pipelines.llm.client import LLMClient

StepKind = Literal["source", "map", "barrier"]


class Params(BaseModel):
    """Base for step parameters: unknown keys and wrong types are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass
class StepContext:
    step_name: str
    recipe_name: str
    fingerprint: str
    run_dir: Path
    # The resolved `llm:` block for this step (recipe-level merged with the step's own), or None.
    llm_config: dict[str, Any] | None = None
    # Free-form counters a step may add to its stats (e.g. "cache_hits"); merged across shards.
    counters: Counter = field(default_factory=Counter)
    # The ray executor's workers each write a request-cache part of their own (pipelines.llm.cache_parts).
    own_cache_part: bool = False
    _llm: Any = None

    @property
    def llm(self) -> LLMClient:
        """The step's model client, built on first use so steps that never call a model never load one."""
        if self._llm is None:
            if self.llm_config is None:
                raise RuntimeError(f"step {self.step_name!r} needs a model but the recipe has no llm: block")
            from pipelines.llm.factory import build_client

            self._llm = build_client(self.llm_config, cache_path=self.run_dir / "llm_cache.sqlite",
                                     own_part=self.own_cache_part)
        return self._llm

    def end_task(self) -> None:
        """After each task: a worker's cache part is closed, so the driver can fold it in after the last."""
        release = getattr(self._llm, "release", None)
        if release is not None:
            release()

    def close(self) -> None:
        if self._llm is not None:
            self.counters.update(self._llm.stats())
            self._llm.close()
            self._llm = None


class Step:
    """Base class for registered components. Subclasses set `kind`, `Params` and implement `run`."""

    kind: ClassVar[StepKind] = "map"
    Params: ClassVar[type[Params]] = Params
    # True when the step calls a model: the recipe's llm block becomes part of its fingerprint.
    uses_llm: ClassVar[bool] = False
    # Registered name, set by @register.
    component: ClassVar[str] = ""
    # A barrier run in three phases (keys, decide, apply; see the module docstring).
    split: ClassVar[bool] = False
    # A split barrier whose apply passes every sample on unchanged: its output shards are its input
    # shards, linked rather than decoded and written again.
    passthrough: ClassVar[bool] = False

    @classmethod
    def input_paths(cls, params: dict[str, Any]) -> dict[tuple, Path]:
        """Files or folders the step reads besides its input shards, keyed by the parameter that names
        them (("path",), ("paths", 0)). Validation checks that each exists and can be read before anything
        runs, and their content is part of the step's fingerprint."""
        return {}

    def __init__(self, params: Params, ctx: StepContext) -> None:
        self.params = params
        self.ctx = ctx

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        if not self.split:
            raise NotImplementedError(f"{type(self).__name__} must implement run()")
        # One stream is one shard: the same three phases the executor runs, in this process.
        held = list(samples)
        (plan,) = self.decide([self.keys(iter(held))])
        yield from self.apply(iter(held), plan)

    # ---- split barriers ---------------------------------------------------------------------------

    def keys(self, samples: Iterator[Sample]) -> Any:
        """Per input shard, in parallel: what `decide` needs from this shard (small, picklable)."""
        raise NotImplementedError

    def decide(self, keys: list[Any]) -> list[Any]:
        """Once, over every shard's keys in input order: one plan per shard for `apply`."""
        raise NotImplementedError

    def apply(self, samples: Iterator[Sample], plan: Any) -> Iterator[Sample]:
        """Per input shard, in parallel: the shard's samples again, with the plan's verdicts."""
        return samples

    def close(self) -> None:
        """Release resources (models, files). Called once per task, also after a failure."""
