"""Filters: one method, `keep(sample) -> Verdict`. The base class runs it over the stream and attaches the
verdict, so every drop carries its filter name and reason and lands in the step's rejects."""

from __future__ import annotations

from collections.abc import Iterator

from pipelines.core.sample import Sample, Verdict
from pipelines.core.step import Step


class Filter(Step):
    kind = "map"

    def keep(self, sample: Sample) -> Verdict:
        raise NotImplementedError(f"{type(self).__name__} must implement keep()")

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        for sample in samples:
            yield sample.with_verdict(self.keep(sample))

    def verdict(self, keep: bool, reason: str = "", **kw) -> Verdict:
        return Verdict(filter=self.ctx.step_name, keep=keep, reason=reason, **kw)
