"""Load and validate a recipe: YAML + command-line overrides -> RecipeSpec, or a RecipeError listing
every problem as `FILE:LINE: key.path: message`.

Validation happens entirely before any step runs (and without importing models: components import heavy
libraries lazily), so a typo in the last step of a long recipe fails in a second, not after an hour of
generation. We keep going after the first problem and report them all, because fixing one error per run
is the most annoying way to debug a config.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipelines.core import registry
from pipelines.core.dag import find_cycle, topological_order
from pipelines.core.errors import Problem, RecipeError, format_path, got, hint, pydantic_messages
from pipelines.core.step import Step
from pipelines.core.yaml_lines import compose_with_lines, describe_yaml_error, line_of
from pipelines.llm.client import LLMConfig

TOP_LEVEL_KEYS = ("name", "description", "shard_size", "workers", "executor", "llm", "steps")
STEP_RESERVED_KEYS = ("use", "after", "llm", "resources")
EXECUTORS = ("local", "ray")
RESOURCE_KEYS = ("num_cpus", "num_gpus", "memory")  # what a step may ask of a Ray node (memory in bytes)
RECIPE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
STEP_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
DEFAULT_SHARD_SIZE = 100

@dataclass
class StepSpec:
    name: str
    component: str
    cls: type[Step]
    params: dict[str, Any]  # cls.Params(...).model_dump(mode="json"): defaults filled in
    after: list[str]
    llm: dict[str, Any] | None  # merged + validated LLMConfig dump when cls.uses_llm, else None
    line: int
    resources: dict[str, float] = field(default_factory=dict)  # Ray task resources; not in the fingerprint


@dataclass
class RecipeSpec:
    name: str
    path: Path
    description: str | None
    shard_size: int
    workers: int | None  # None: the executor picks (number of CPUs)
    executor: str  # local or ray
    llm: dict[str, Any]  # recipe-level LLMConfig dump (defaults when the recipe has no llm block)
    steps: dict[str, StepSpec]  # in file order
    order: list[str]  # topological, ties broken by file order
    raw: dict[str, Any]  # the recipe as loaded, after overrides, before defaults

    def deps(self) -> dict[str, list[str]]:
        return {name: list(step.after) for name, step in self.steps.items()}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # YAML `true` is a bool, not a 1


class _Checker:
    """Accumulates problems for one file; knows each key's line and which keys came from overrides."""

    def __init__(self, filename: str, lines: dict[tuple, int], failed: Iterable[tuple] = ()) -> None:
        self.filename = filename
        self.lines = lines
        self.failed = set(failed)  # YAML values already reported as unbuildable
        self.problems: list[Problem] = []
        self.overridden: dict[tuple, str] = {}  # key path -> the override text that set it

    def report(self, path: tuple, message: str) -> None:
        if any(path[:i] in self.failed for i in range(1, len(path) + 1)):
            return
        text = f"{format_path(path)}: {message}" if path else message
        # A value set on the command line is wrong "because of" the override: say so, or the user will
        # stare at a file line that looks fine.
        source = next((ov for p, ov in reversed(self.overridden.items()) if path[:len(p)] == p), None)
        if source is not None:
            text = f"override '{source}': {text}"
        self.problems.append(Problem(self.filename, line_of(self.lines, path), text))

    def override_problem(self, text: str, path: tuple, message: str) -> None:
        self.problems.append(Problem(self.filename, line_of(self.lines, path), f"override '{text}': {message}"))

    # -- overrides ---------------------------------------------------------------------------------

    def apply_overrides(self, data: Any, overrides: Sequence[str]) -> None:
        for text in overrides:
            key, eq, raw_value = text.partition("=")
            parts = tuple(key.strip().split("."))
            if not eq:
                self.override_problem(text, parts, "expected KEY=VALUE, e.g. steps.chat.turns=5")
                continue
            if not key.strip() or any(not p for p in parts):
                self.override_problem(text, (), "empty key (or empty part in a dotted key)")
                continue
            try:
                value = yaml.safe_load(raw_value)
            except yaml.YAMLError as exc:
                self.override_problem(text, parts, f"value is not valid YAML: {describe_yaml_error(exc)}")
                continue
            if not isinstance(data, dict):
                self.override_problem(text, (), "cannot apply: the recipe's top level is not a mapping")
                continue
            if self._set(data, parts, value, text):
                self.overridden[parts] = text
                self.failed = {f for f in self.failed if f[:len(parts)] != parts}  # replaced: judge anew

    def _set(self, data: dict, parts: tuple, value: Any, text: str) -> bool:
        node = data
        for depth, part in enumerate(parts):
            here = parts[:depth + 1]
            if parts[0] == "steps" and len(parts) > 1 and part not in node and depth <= 1:
                # Creating a step from the command line would bypass review of the recipe file.
                near = hint(parts[1], node) if depth == 1 else ""
                self.override_problem(text, parts[:1], f"no step {parts[1]!r} in this recipe{near}")
                return False
            if depth == len(parts) - 1:
                node[part] = value
                return True
            if part not in node:
                node[part] = {}  # e.g. `llm.temperature=0.2` on a recipe without an llm block
            elif not isinstance(node[part], dict):
                self.override_problem(text, here, f"{format_path(here)} is {got(node[part])}, not a mapping")
                return False
            node = node[part]
        return False

    # -- pydantic ----------------------------------------------------------------------------------

    def pydantic_problems(self, base: tuple, exc: ValidationError, data: dict, what: str,
                          fields: Iterable[str], skip: Iterable[str] = ()) -> None:
        for loc, message in pydantic_messages(exc, data, what, fields, skip):
            self.report((*base, *loc), message)

    def llm_config(self, path: tuple, merged: dict, own: Iterable[str] | None = None) -> dict | None:
        """Validated LLMConfig dump, or None. `own`: for a step, the keys it sets itself; errors about
        keys it inherited were already reported at the recipe level."""
        try:
            return LLMConfig.model_validate(merged).model_dump()
        except ValidationError as exc:
            skip = () if own is None else [k for k in merged if k not in set(own)]
            self.pydantic_problems(path, exc, merged, "llm key", LLMConfig.model_fields, skip)
            return None

    def check_int(self, data: dict, key: str, default: int | None) -> int | None:
        value = data.get(key, default)
        if value is None and default is None:
            return None
        if not _is_int(value):
            self.report((key,), f"expected int, got {got(value)}")
            return default
        if value < 1:
            self.report((key,), f"must be >= 1, got {value}")
            return default
        return value


def _check_top(chk: _Checker, data: dict) -> tuple[str | None, str | None]:
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            chk.report((key,), f"unknown top-level key{hint(key, TOP_LEVEL_KEYS)}; "
                               f"allowed: {', '.join(TOP_LEVEL_KEYS)}")
    name = data.get("name")
    if "name" not in data:
        chk.report(("name",), "missing required key (the recipe's name, e.g. name: quickstart)")
    elif not isinstance(name, str):
        chk.report(("name",), f"expected str, got {got(name)}")
    elif not RECIPE_NAME_RE.match(name):
        chk.report(("name",), f"invalid name {name!r}: use lowercase letters, digits, '_' and '-' "
                              f"(must match {RECIPE_NAME_RE.pattern})")
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        chk.report(("description",), f"expected str, got {got(description)}")
        description = None
    return (name if isinstance(name, str) else None), description


def _check_step(chk: _Checker, name: Any, body: Any, steps: dict, components: dict,
                recipe_llm: dict) -> tuple[StepSpec | None, list[str]]:
    """Validate one step; returns (spec or None, the deps that name real steps, for the graph checks)."""
    path = ("steps", name)
    line = line_of(chk.lines, path)
    if not isinstance(name, str) or not STEP_NAME_RE.match(name):
        chk.report(path, f"invalid step name {name!r}: use lowercase letters, digits and '_', "
                         f"starting with a letter (must match {STEP_NAME_RE.pattern})")
    if not isinstance(body, dict):
        chk.report(path, f"expected a mapping with a 'use' key, got {got(body)}")
        return None, []

    cls: type[Step] | None = None
    use = body.get("use")
    if "use" not in body:
        typo = difflib.get_close_matches("use", [k for k in body if isinstance(k, str)], n=1)
        near = f" ({typo[0]!r} is not 'use')" if typo else ""
        chk.report((*path, "use"), f"missing required key: the component to run{near}")
    elif not isinstance(use, str):
        chk.report((*path, "use"), f"expected a component name, got {got(use)}")
    elif use not in components:
        chk.report((*path, "use"), f"unknown component {use!r}{hint(use, components)}")
    else:
        cls = components[use]

    after = body.get("after")
    deps: list[str] = []
    after_ok = True
    if after is not None and not isinstance(after, list):
        example = f" (write after: [{after}])" if isinstance(after, str) else ""
        chk.report((*path, "after"), f"expected a list of step names, got {got(after)}{example}")
        after_ok = False
    for i, dep in enumerate(after if isinstance(after, list) else []):
        if not isinstance(dep, str):
            chk.report((*path, "after", i), f"expected a step name, got {got(dep)}")
        elif dep == name:
            chk.report((*path, "after", i), "a step cannot run after itself")
        elif dep not in steps:
            chk.report((*path, "after", i), f"unknown step {dep!r}{hint(dep, steps)}")
        elif dep in deps:
            chk.report((*path, "after", i), f"step {dep!r} is listed twice")
        else:
            deps.append(dep)
            continue
        after_ok = False

    if cls is None:
        return None, deps  # without the component we cannot know its params, kind or llm use

    ok = after_ok
    if cls.kind == "source" and isinstance(after, list) and after:
        chk.report((*path, "after"), f"{use!r} is a source step: it takes no input, so it cannot have 'after'")
        ok = False
    elif cls.kind != "source" and after_ok and not after:
        chk.report(path, f"{use!r} is a {cls.kind} step: it needs 'after: [...]' naming its input step")
        ok = False

    step_llm = body.get("llm")
    llm: dict | None = None
    if step_llm is not None and not cls.uses_llm:
        chk.report((*path, "llm"), f"component {use!r} does not use a model, so it takes no llm block")
        ok = False
    elif step_llm is not None and not isinstance(step_llm, dict):
        chk.report((*path, "llm"), f"expected a mapping of llm settings, got {got(step_llm)}")
        ok = False
    elif cls.uses_llm:
        own = step_llm or {}
        llm = chk.llm_config((*path, "llm"), {**recipe_llm, **own}, own=own)
        ok = ok and llm is not None

    resources = body.get("resources") or {}
    if not isinstance(resources, dict):
        chk.report((*path, "resources"), f"expected a mapping of {', '.join(RESOURCE_KEYS)}, got {got(resources)}")
        ok, resources = False, {}
    for key, value in resources.items():
        if key not in RESOURCE_KEYS:
            chk.report((*path, "resources", key), f"unknown resource {key!r}; known: {', '.join(RESOURCE_KEYS)}")
            ok = False
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            chk.report((*path, "resources", key), f"expected a number >= 0, got {got(value)}")
            ok = False

    raw_params = {k: v for k, v in body.items() if k not in STEP_RESERVED_KEYS}
    try:
        params = cls.Params.model_validate(raw_params).model_dump(mode="json")
    except ValidationError as exc:
        fields = [*cls.Params.model_fields, *STEP_RESERVED_KEYS]
        chk.pydantic_problems(path, exc, raw_params, "parameter", fields)
        return None, deps
    _check_input_paths(chk, path, cls, params)
    if not ok:
        return None, deps
    return StepSpec(name=name, component=use, cls=cls, params=params, after=list(after or []), llm=llm,
                    line=line, resources=dict(resources)), deps


def _check_input_paths(chk: _Checker, path: tuple, cls: type[Step], params: dict) -> None:
    """Every file or folder the step will read must exist and be readable now, not halfway through a run."""
    for key, p in cls.input_paths(params).items():
        if not p.exists():
            chk.report((*path, *key), f"no such file '{p}'")
        elif not os.access(p, os.R_OK | (os.X_OK if p.is_dir() else 0)):
            chk.report((*path, *key), f"cannot read '{p}' (permission denied)")


def _check_graph(chk: _Checker, deps: dict[str, list[str]]) -> None:
    graph = {name: list(d) for name, d in deps.items()}
    order = list(graph)
    # Report every independent cycle, not just the first: drop each found cycle's steps and look again.
    while cycle := find_cycle(graph):
        start = min(range(len(cycle)), key=lambda i: order.index(cycle[i]))
        cycle = cycle[start:] + cycle[:start]  # begin at the step earliest in the file
        chain = " after ".join([*cycle, cycle[0]])
        chk.report(("steps", cycle[0], "after"), f"dependency cycle: {chain}")
        for name in cycle:
            graph.pop(name)


def _validate(chk: _Checker, data: Any, path: Path) -> RecipeSpec | None:
    if data is None:
        chk.report((), "recipe is empty (expected a mapping with name: and steps:)")
        return None
    if not isinstance(data, dict):
        chk.report((), f"top level must be a mapping with name: and steps:, got {got(data)}")
        return None
    name, description = _check_top(chk, data)
    shard_size = chk.check_int(data, "shard_size", DEFAULT_SHARD_SIZE)
    workers = chk.check_int(data, "workers", None)
    executor = data.get("executor", "local")
    if executor not in EXECUTORS:
        chk.report(("executor",), f"expected one of {', '.join(EXECUTORS)}, got {got(executor)}")

    recipe_llm_raw = data.get("llm")
    if recipe_llm_raw is None:
        recipe_llm_raw = {}
    elif not isinstance(recipe_llm_raw, dict):
        chk.report(("llm",), f"expected a mapping of llm settings, got {got(recipe_llm_raw)}")
        recipe_llm_raw = {}
    recipe_llm = chk.llm_config(("llm",), recipe_llm_raw)

    steps_raw = data.get("steps")
    if "steps" not in data:
        chk.report(("steps",), "missing required key (a mapping of step name -> step)")
        return None
    if not isinstance(steps_raw, dict):
        chk.report(("steps",), f"expected a mapping of step name -> step, got {got(steps_raw)}")
        return None
    if not steps_raw:
        chk.report(("steps",), "a recipe needs at least one step")
        return None

    components = registry.load_components()
    steps: dict[str, StepSpec] = {}
    deps: dict[str, list[str]] = {}
    for step_name, body in steps_raw.items():
        spec, deps[step_name] = _check_step(chk, step_name, body, steps_raw, components, recipe_llm_raw)
        if spec is not None:
            steps[step_name] = spec
    _check_graph(chk, deps)
    if chk.problems or recipe_llm is None or name is None:
        return None
    return RecipeSpec(name=name, path=path, description=description, shard_size=shard_size, workers=workers,
                      executor=executor, llm=recipe_llm, steps=steps, order=topological_order(deps, list(steps)), raw=data)


def load_recipe(path: str | os.PathLike, overrides: Sequence[str] = ()) -> RecipeSpec:
    """Parse, override and validate the recipe at `path`; raises RecipeError listing every problem."""
    filename = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RecipeError([Problem(filename, 1, f"cannot read recipe: {reason}")]) from exc
    doc = compose_with_lines(text, filename)
    if doc.data is None and doc.problems:  # a syntax error: nothing after it can be trusted
        raise RecipeError(doc.problems)
    chk = _Checker(filename, doc.lines, doc.failed)
    chk.problems.extend(doc.problems)  # duplicate keys, bad tags: keep validating the rest
    data = copy.deepcopy(doc.data)
    chk.apply_overrides(data, overrides)
    spec = _validate(chk, data, Path(path))
    if chk.problems or spec is None:
        # Stable sort: file order for the reader, discovery order within a line.
        raise RecipeError(sorted(chk.problems, key=lambda p: p.line))
    return spec


def validate_recipes(paths: Iterable[str | os.PathLike], overrides: Sequence[str] = ()) -> list[Problem]:
    """Every problem in every recipe (empty list: all valid). Never raises for recipe problems."""
    problems: list[Problem] = []
    for path in paths:
        try:
            load_recipe(path, overrides)
        except RecipeError as exc:
            problems.extend(exc.problems)
    return problems
