"""Recipe validation: every malformed-recipe kind gives one `FILE:LINE: key.path: message` problem."""

from __future__ import annotations

import re
import textwrap

import pytest

from pipelines.core import registry
from pipelines.core.dag import downstream, find_cycle, topological_order
from pipelines.core.errors import Problem, RecipeError
from pipelines.core.recipe import load_recipe, validate_recipes
from pipelines.core.yaml_lines import load_with_lines
from tests.core import fixtures_components  # noqa: F401  (registers the test.* components)


@pytest.fixture(autouse=True)
def only_test_components(monkeypatch):
    # The built-in component modules are written elsewhere; these tests must not depend on them.
    monkeypatch.setattr(registry, "BUILTIN_MODULES", ())
    monkeypatch.delenv("REFINERY_PLUGINS", raising=False)


def write(tmp_path, text, name="recipe.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


# Line numbers below count from the first line of each dedented text.
HEAD = """
name: demo
steps:
  seeds: {use: test.source, n: 10}
  chat: {use: test.generate, after: [seeds]}
"""

# (id, recipe text, overrides, expected line, fragment the message must contain)
CASES = [
    ("yaml_syntax", "name: demo\nsteps:\n  seeds: {use: test.source, n: 10]\n", (), 3, "YAML syntax error"),
    ("yaml_bad_tag", "name: demo\nsteps:\n  seeds: {use: test.source, n: !foo 10}\n", (), 3, "steps.seeds.n:"),
    ("multiple_documents", HEAD + "---\nname: other\n", (), 5, "single document"),
    ("empty_file", "# nothing here\n", (), 1, "recipe is empty"),
    ("top_not_mapping", "- name: demo\n", (), 1, "top level must be a mapping"),
    ("unknown_top_key", HEAD + "shardsize: 10\n", (), 5, "shardsize: unknown top-level key (did you mean 'shard_size'?)"),
    ("missing_name", "steps:\n  seeds: {use: test.source, n: 10}\n", (), 1, "name: missing required key"),
    ("invalid_name", HEAD.replace("name: demo", "name: My Recipe"), (), 1, "name: invalid name 'My Recipe'"),
    ("name_not_str", HEAD.replace("name: demo", "name: 5"), (), 1, "name: expected str, got int 5"),
    ("description_not_str", HEAD + "description: [a]\n", (), 5, "description: expected str"),
    ("steps_missing", "name: demo\nshard_size: 5\n", (), 1, "steps: missing required key"),
    ("steps_empty", "name: demo\nsteps: {}\n", (), 2, "steps: a recipe needs at least one step"),
    ("steps_not_mapping", "name: demo\nsteps:\n  - seeds\n", (), 2, "steps: expected a mapping"),
    ("step_not_mapping", "name: demo\nsteps:\n  seeds: test.source\n", (), 3, "steps.seeds: expected a mapping"),
    ("invalid_step_name", "name: demo\nsteps:\n  Seeds: {use: test.source, n: 1}\n", (), 3,
     "steps.Seeds: invalid step name 'Seeds'"),
    ("missing_use", "name: demo\nsteps:\n  seeds: {uses: test.source, n: 1}\n", (), 3,
     "steps.seeds.use: missing required key: the component to run ('uses' is not 'use')"),
    ("unknown_component", "name: demo\nsteps:\n  seeds: {use: test.sauce, n: 1}\n", (), 3,
     "steps.seeds.use: unknown component 'test.sauce' (did you mean 'test.source'?)"),
    ("unknown_param", HEAD.replace("n: 10}", "n: 10, sed: 1}"), (), 3,
     "steps.seeds.sed: unknown parameter (did you mean 'seed'?)"),
    ("wrong_type_int", HEAD + "  more:\n    use: test.generate\n    after: [chat]\n    turns: three\n", (), 8,
     "steps.more.turns: expected int, got str 'three'"),
    ("wrong_type_float", HEAD.replace("[seeds]}", "[seeds], temperature_scale: hot}"), (), 4,
     "steps.chat.temperature_scale: expected float, got str 'hot'"),
    ("wrong_type_list", HEAD.replace("[seeds]}", "[seeds], tags: a}"), (), 4,
     "steps.chat.tags: expected list, got str 'a'"),
    ("missing_required_param", HEAD.replace("n: 10", "seed: 1"), (), 3, "steps.seeds.n: missing required parameter"),
    ("out_of_range", HEAD.replace("[seeds]}", "[seeds], turns: 0}"), (), 4,
     "steps.chat.turns: should be greater than or equal to 1, got int 0"),
    ("bad_literal", HEAD.replace("n: 10", "n: 10, mode: medium"), (), 3,
     "steps.seeds.mode: should be 'fast' or 'slow', got str 'medium'"),
    ("after_not_list", HEAD.replace("after: [seeds]", "after: seeds"), (), 4,
     "steps.chat.after: expected a list of step names, got str 'seeds' (write after: [seeds])"),
    ("after_item_not_str", HEAD.replace("after: [seeds]", "after: [1]"), (), 4, "steps.chat.after[0]: expected a step name"),
    ("after_unknown_step", HEAD.replace("after: [seeds]", "after: [seds]"), (), 4,
     "steps.chat.after[0]: unknown step 'seds' (did you mean 'seeds'?)"),
    ("after_self", HEAD.replace("after: [seeds]", "after: [chat]"), (), 4,
     "steps.chat.after[0]: a step cannot run after itself"),
    ("after_twice", HEAD.replace("after: [seeds]", "after: [seeds, seeds]"), (), 4, "step 'seeds' is listed twice"),
    ("cycle", HEAD + "  a: {use: test.map, after: [b]}\n  b: {use: test.map, after: [c]}\n"
     "  c: {use: test.map, after: [a]}\n", (), 5, "steps.a.after: dependency cycle: a after b after c after a"),
    ("source_with_after", HEAD + "  more: {use: test.source, n: 1, after: [seeds]}\n", (), 5,
     "steps.more.after: 'test.source' is a source step"),
    ("map_without_after", HEAD.replace(", after: [seeds]", ""), (), 4,
     "steps.chat: 'test.generate' is a map step: it needs 'after"),
    ("barrier_without_after", HEAD + "  dedup: {use: test.barrier, after: []}\n", (), 5,
     "steps.dedup: 'test.barrier' is a barrier step"),
    ("llm_not_mapping", HEAD + "llm: fast\n", (), 5, "llm: expected a mapping"),
    ("llm_unknown_key", HEAD + "llm: {temprature: 0.5}\n", (), 5,
     "llm.temprature: unknown llm key (did you mean 'temperature'?)"),
    ("llm_wrong_type", HEAD + "llm:\n  model: tiny\n  temperature: hot\n", (), 7,
     "llm.temperature: expected float, got str 'hot'"),
    ("llm_unknown_backend", HEAD + "llm: {backend: gpt4all}\n", (), 5, "llm.backend: should be "),
    ("llm_out_of_range", HEAD + "llm:\n  temperature: 9\n", (), 6, "llm.temperature: should be less than or equal to 5"),
    ("step_llm_not_mapping", HEAD.replace("[seeds]}", "[seeds], llm: hot}"), (), 4, "steps.chat.llm: expected a mapping"),
    ("step_llm_wrong_type", HEAD.replace("[seeds]}", "[seeds], llm: {max_tokens: many}}"), (), 4,
     "steps.chat.llm.max_tokens: expected int, got str 'many'"),
    ("step_llm_without_model", HEAD + "  dedup:\n    use: test.barrier\n    after: [chat]\n    llm: {temperature: 0.1}\n",
     (), 8, "steps.dedup.llm: component 'test.barrier' does not use a model"),
    ("duplicate_key", HEAD + "  more:\n    use: test.generate\n    after: [chat]\n    turns: 2\n    turns: 3\n", (), 9,
     "steps.more.turns: duplicate key (first defined at line 8)"),
    ("duplicate_step", HEAD + "  chat: {use: test.generate, after: [seeds]}\n", (), 5, "steps.chat: duplicate key"),
    ("shard_size_type", HEAD + "shard_size: big\n", (), 5, "shard_size: expected int, got str 'big'"),
    ("shard_size_zero", HEAD + "shard_size: 0\n", (), 5, "shard_size: must be >= 1, got 0"),
    ("workers_bool", HEAD + "workers: true\n", (), 5, "workers: expected int, got bool True"),
    ("override_no_equals", HEAD, ("steps.chat.turns",), 4, "override 'steps.chat.turns': expected KEY=VALUE"),
    ("override_empty_key", HEAD, ("=5",), 1, "override '=5': empty key"),
    ("override_empty_part", HEAD, ("steps..turns=5",), 1, "override 'steps..turns=5': empty key"),
    ("override_through_scalar", HEAD, ("steps.seeds.n.x=1",), 3,
     "override 'steps.seeds.n.x=1': steps.seeds.n is int 10, not a mapping"),
    ("override_unknown_step", HEAD, ("steps.caht.turns=5",), 2,
     "override 'steps.caht.turns=5': no step 'caht' in this recipe (did you mean 'chat'?)"),
    ("override_bad_value", HEAD, ("steps.chat.turns=abc",), 4,
     "override 'steps.chat.turns=abc': steps.chat.turns: expected int, got str 'abc'"),
    ("override_bad_yaml", HEAD, ("steps.chat.tags=[a",), 4, "override 'steps.chat.tags=[a': value is not valid YAML"),
    ("override_unknown_param", HEAD, ("steps.seeds.sed=1",), 3,
     "override 'steps.seeds.sed=1': steps.seeds.sed: unknown parameter (did you mean 'seed'?)"),
    ("override_llm", HEAD + "llm:\n  temperature: 0.5\n", ("llm.temperature=hot",), 6,
     "override 'llm.temperature=hot': llm.temperature: expected float"),
]


@pytest.mark.parametrize(("text", "overrides", "line", "fragment"),
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_malformed_recipe(tmp_path, text, overrides, line, fragment):
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as info:
        load_recipe(path, overrides)
    rendered = [str(p) for p in info.value.problems]
    # Each case holds exactly one mistake: a second problem would be a cascade that buries the real one.
    assert len(rendered) == 1, rendered
    assert re.match(rf"^{re.escape(str(path))}:\d+: \S", rendered[0]) and "\n" not in rendered[0]
    assert rendered[0].startswith(f"{path}:{line}: "), rendered
    assert fragment in rendered[0], rendered


def test_unreadable_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    problems = validate_recipes([missing])
    assert [str(p) for p in problems] == [f"{missing}:1: cannot read recipe: No such file or directory"]
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: \xff\n")
    [problem] = validate_recipes([bad])
    assert problem.line == 1 and "cannot read recipe" in problem.message


def test_all_problems_reported_in_one_pass(tmp_path):
    path = write(tmp_path, """
        name: Demo
        shard_size: 0
        steps:
          seeds: {use: test.source, n: 0}
          chat: {use: test.generate, after: seeds, turns: three}
          dedup: {use: test.barier, after: [chat]}
          dup: {use: test.map}
        """)
    problems = validate_recipes([path, tmp_path / "missing.yaml"], overrides=["steps.chat.prefix=1"])
    got = [(p.line, p.message.split(":")[0]) for p in problems]
    assert got == [
        (1, "name"), (2, "shard_size"), (4, "steps.seeds.n"),
        (5, "steps.chat.after"), (5, "steps.chat.turns"), (5, "override 'steps.chat.prefix=1'"),
        (6, "steps.dedup.use"), (7, "steps.dup"), (1, "cannot read recipe"),
    ], [str(p) for p in problems]
    assert all(re.match(r"^\S+:\d+: \S", str(p)) for p in problems)
    assert validate_recipes([write(tmp_path, HEAD, "ok.yaml")]) == []


VALID = """
# refinery run recipe.yaml
name: demo-recipe_1
description: a test recipe
shard_size: 25
workers: 2
llm: {model: tiny, temperature: 0.5}
steps:
  dedup: {use: test.barrier, after: [chat, tagged]}
  seeds: {use: test.source, n: 200, seed: 7}
  tagged: {use: test.map, after: [seeds]}
  chat:
    use: test.generate
    after: [seeds]
    turns: 2
    tags: [x, y]
    llm: {temperature: 0.9}
"""


def test_valid_recipe(tmp_path):
    spec = load_recipe(write(tmp_path, VALID))
    assert (spec.name, spec.description, spec.shard_size, spec.workers) == ("demo-recipe_1", "a test recipe", 25, 2)
    assert list(spec.steps) == ["dedup", "seeds", "tagged", "chat"]  # file order
    # dedup is first in the file but last to run; ties (tagged, chat) follow file order.
    assert spec.order == ["seeds", "tagged", "chat", "dedup"]
    chat = spec.steps["chat"]
    assert chat.cls is fixtures_components.GenerateStep and chat.component == "test.generate"
    assert chat.params == {"turns": 2, "temperature_scale": 1.0, "prefix": "", "tags": ["x", "y"]}
    assert chat.after == ["seeds"] and chat.line == 11
    assert spec.steps["seeds"].params == {"n": 200, "seed": 7, "mode": "fast"}
    # The step's llm block is merged over the recipe's; non-model steps get no llm config at all.
    assert spec.llm["temperature"] == 0.5 and spec.llm["model"] == "tiny" and spec.llm["max_tokens"] == 128
    assert chat.llm["temperature"] == 0.9 and chat.llm["model"] == "tiny"
    assert spec.steps["dedup"].llm is None and spec.steps["seeds"].llm is None
    assert spec.raw["steps"]["chat"]["llm"] == {"temperature": 0.9}
    assert spec.deps() == {"dedup": ["chat", "tagged"], "seeds": [], "tagged": ["seeds"], "chat": ["seeds"]}


def test_defaults_without_optional_blocks(tmp_path):
    spec = load_recipe(write(tmp_path, HEAD))
    assert spec.shard_size == 100 and spec.workers is None and spec.description is None
    assert spec.llm == spec.steps["chat"].llm and spec.llm["backend"] == "llama_cpp"


def test_overrides_apply_with_types(tmp_path):
    spec = load_recipe(write(tmp_path, VALID), [
        "steps.chat.turns=5", "steps.chat.tags=[a, b]", "shard_size=10", "llm.temperature=0.2",
        "steps.chat.llm.max_tokens=64", "steps.seeds.mode=slow", "workers=1", "description=x=y",
    ])
    chat = spec.steps["chat"]
    assert chat.params["turns"] == 5 and chat.params["tags"] == ["a", "b"]
    assert spec.shard_size == 10 and spec.workers == 1 and spec.description == "x=y"
    assert spec.llm["temperature"] == 0.2
    assert chat.llm["temperature"] == 0.9 and chat.llm["max_tokens"] == 64  # step's own key still wins
    assert spec.steps["seeds"].params["mode"] == "slow"
    assert spec.raw["steps"]["chat"]["turns"] == 5 and spec.raw["shard_size"] == 10
    # An override can create a block the file lacks.
    spec = load_recipe(write(tmp_path, HEAD, "head.yaml"), ["llm.temperature=0.3", "steps.chat.llm.seed=4"])
    assert spec.llm["temperature"] == 0.3 and spec.steps["chat"].llm["seed"] == 4


def test_inherited_llm_error_reported_once(tmp_path):
    # chat inherits the bad temperature; the problem belongs to the recipe-level block, said once.
    path = write(tmp_path, HEAD + "llm: {temperature: 9}\n")
    problems = validate_recipes([path])
    assert [p.message.split(":")[0] for p in problems] == ["llm.temperature"]


def test_problem_is_one_line():
    assert str(Problem("r.yaml", 3, "steps.a: bad\nvalue")) == "r.yaml:3: steps.a: bad value"
    assert str(RecipeError([Problem("a", 1, "x"), Problem("a", 2, "y")])) == "a:1: x\na:2: y"


def test_yaml_lines():
    data, lines = load_with_lines("a:\n  b: [1,\n    2]\n  c: &x {d: 1}\ne:\n  <<: *x\n  d: 2\n", "f.yaml")
    assert data == {"a": {"b": [1, 2], "c": {"d": 1}}, "e": {"d": 2}}
    assert lines[("a",)] == 1 and lines[("a", "b")] == 2 and lines[("a", "b", 1)] == 3 and lines[("e", "d")] == 7
    with pytest.raises(RecipeError, match=r"^f.yaml:2: a: duplicate key \(first defined at line 1\)$"):
        load_with_lines("a: 1\na: 2\n", "f.yaml")


def test_dag_helpers():
    deps = {"d": ["b", "c"], "a": [], "b": ["a"], "c": ["a"]}
    assert topological_order(deps, ["d", "c", "a", "b"]) == ["a", "c", "b", "d"]
    assert find_cycle(deps) is None
    assert downstream(deps, "a") == {"b", "c", "d"} and downstream(deps, "d") == set()
    cyclic = {"x": ["z"], "y": ["x"], "z": ["y"], "w": []}
    assert find_cycle(cyclic) == ["x", "z", "y"]
    assert find_cycle({"s": ["s"]}) == ["s"]
    with pytest.raises(ValueError, match="cycle"):
        topological_order(cyclic, list(cyclic))
