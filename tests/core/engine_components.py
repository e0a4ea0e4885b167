"""Test-only components, loaded in worker processes through REFINERY_PLUGINS (workers rebuild steps from
the registry, so a component defined only in the test process would not exist there)."""

import os
from collections.abc import Iterator

from pydantic import Field

from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params, Step


class ExplodeParams(Params):
    # The step raises on a sample whose text contains this marker, unless the flag file is gone.
    marker: str = "#3"
    flag_file: str = Field(description="while this file exists the step fails")


@register("test.explode")
class Explode(Step):
    kind = "map"
    Params = ExplodeParams

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        for s in samples:
            if self.params.marker in s.text() and os.path.exists(self.params.flag_file):
                raise RuntimeError(f"boom on {s.id}")
            yield s
