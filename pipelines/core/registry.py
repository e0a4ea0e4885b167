"""Components by registered name: `use: generate.multi_turn` in a recipe resolves here.

Components register with `@register("name")` when their module is imported. `load_components()` imports
the built-in modules listed below plus any module named in the REFINERY_PLUGINS environment variable
(comma-separated), so a recipe can be validated without importing anything heavy: component modules must
import models and large libraries lazily, inside the step.
"""

from __future__ import annotations

import difflib
import importlib
import os

from pipelines.core.step import Step

_REGISTRY: dict[str, type[Step]] = {}

BUILTIN_MODULES = (
    "personas.sampler",
    "personas.expand",
    "personas.assign",
    "personas.coverage_step",
    "pipelines.generators.multi_turn",
    "pipelines.generators.function_calling",
    "pipelines.tools.generate",
    "pipelines.generators.seeds",
    "pipelines.generators.documents",
    "pipelines.generators.reasoning",
    "pipelines.generators.problem_variants",
    "pipelines.generators.evolve",
    "pipelines.generators.grounded",
    "pipelines.generators.candidates",
    "pipelines.io_steps",
    "filters.exact_dedup",
    "filters.length",
    "filters.near_dedup",
    "filters.semantic_dedup",
    "filters.diversity",
    "filters.correctness.tool_calls",
    "filters.correctness.math_answer",
    "filters.correctness.format",
    "filters.judge",
    "filters.decontaminate",
    "review_ui.steps",
    "pipelines.evals.steps",
    "pipelines.export.step",
    "pipelines.report.step",
)


def register(name: str):
    def wrap(cls: type[Step]) -> type[Step]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"component {name!r} registered twice ({_REGISTRY[name].__name__}, {cls.__name__})")
        cls.component = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def load_components() -> dict[str, type[Step]]:
    plugins = [m.strip() for m in os.environ.get("REFINERY_PLUGINS", "").split(",") if m.strip()]
    for module in (*BUILTIN_MODULES, *plugins):
        importlib.import_module(module)
    return dict(_REGISTRY)


def get_component(name: str) -> type[Step]:
    components = load_components()
    if name not in components:
        close = difflib.get_close_matches(name, components, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise KeyError(f"unknown component {name!r}{hint}")
    return components[name]
