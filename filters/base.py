"""Filters: one method, `keep(sample) -> Verdict`. The base class runs it over the stream and attaches the
verdict, so every drop carries its filter name and reason and lands in the step's rejects.

Barrier filters (dedup, diversity selection) override `run` instead and still attach one verdict per
sample. A filter that relies on helper modules lists them in `helper_modules`: their source becomes part
of the step's fingerprint, so a change to shared normalisation or schema code recomputes the step.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pipelines.core.sample import Sample, Verdict
from pipelines.core.step import Step


def module_file(name: str) -> Path:
    """Source file of a module, found without importing it (helpers may import heavy libraries)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"helper module {name!r} not found")
    return Path(spec.origin)


class Filter(Step):
    kind = "map"
    helper_modules: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def fingerprint_files(cls) -> list[Path]:
        return [module_file(m) for m in ("filters.base", *cls.helper_modules)]

    def keep(self, sample: Sample) -> Verdict:
        raise NotImplementedError(f"{type(self).__name__} must implement keep()")

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        if self.split:
            yield from super().run(samples)
            return
        for sample in samples:
            yield sample.with_verdict(self.keep(sample))

    def verdict(self, keep: bool, reason: str = "", **kw) -> Verdict:
        return Verdict(filter=self.ctx.step_name, keep=keep, reason=reason, **kw)
