"""Helpers shared by the filter tests: build a step the way a worker does, run it over samples."""

from __future__ import annotations

from pathlib import Path

from pipelines.core.registry import get_component
from pipelines.core.step import StepContext


def make_step(component: str, tmp_path: Path, llm: dict | None = None, **params):
    cls = get_component(component)
    ctx = StepContext(step_name=component.split(".")[-1], recipe_name="test", fingerprint="f" * 32,
                      run_dir=tmp_path, llm_config=llm)
    return cls(cls.Params(**params), ctx)


def run_step(component: str, tmp_path: Path, samples, llm: dict | None = None, **params):
    step = make_step(component, tmp_path, llm, **params)
    try:
        return list(step.run(iter(samples)))
    finally:
        step.ctx.close()

