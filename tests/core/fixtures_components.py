"""Test-only components, registered under `test.*` so recipe tests do not depend on the built-ins."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipelines.core.registry import register
from pipelines.core.step import Params, Step


@register("test.source")
class SourceStep(Step):
    kind = "source"

    class Params(Params):
        n: int = Field(ge=1)  # required
        seed: int = 0
        mode: Literal["fast", "slow"] = "fast"


@register("test.generate")
class GenerateStep(Step):
    kind = "map"
    uses_llm = True

    class Params(Params):
        turns: int = Field(3, ge=1, le=10)
        temperature_scale: float = 1.0
        prefix: str = ""
        tags: list[str] = []


@register("test.map")
class PlainMapStep(Step):
    kind = "map"

    class Params(Params):
        field: str = "text"


@register("test.barrier")
class BarrierStep(Step):
    kind = "barrier"

    class Params(Params):
        key: str = "text"
