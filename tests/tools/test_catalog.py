"""Tool catalogs from files in every accepted layout, with errors that name the file and line."""

import json
import random

import pytest

from pipelines.tools.catalog import bfcl_held_out, catalog_from_tools, load_catalog, validate_sources
from pipelines.tools.executors import builtin_tools
from pipelines.tools.schema import ToolSchemaError, tool_name
from pipelines.tools.selection import make_plan

WEATHER = {"name": "get_forecast", "description": "Forecast for a city.",
           "parameters": {"type": "dict", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                          "required": ["city"]}}
STOCK = {"type": "function", "function": {"name": "stock_price", "description": "Latest price of a share.",
                                          "parameters": {"type": "object", "properties": {"ticker": {"type": "string"}},
                                                         "required": ["ticker"]}}}


def test_files_in_every_layout(tmp_path):
    (tmp_path / "list.json").write_text(json.dumps([WEATHER, STOCK]))
    (tmp_path / "lines.jsonl").write_text("\n".join([
        json.dumps(WEATHER),                                                   # one tool
        json.dumps([STOCK, {**WEATHER, "name": "get_tides"}]),                 # a group
        json.dumps({"id": "q1", "function": [WEATHER]}),                       # a BFCL question
        json.dumps({"kind": "tool_use", "tools": [STOCK], "messages": []}),    # a sample record
        "",
        json.dumps({**STOCK, "result_schema": {"type": "object", "properties": {"price": {"type": "number"}}}}),
    ]))
    catalog = load_catalog((str(tmp_path / "list.json"), str(tmp_path / "lines.jsonl")))
    assert sorted(tool_name(t) for t in catalog.tools) == ["get_forecast", "get_tides", "stock_price"]
    assert len(catalog.groups) == 6 and catalog.groups[0] == [0, 1]
    assert catalog.tools[0]["function"]["parameters"]["type"] == "object"  # "dict" normalised
    assert catalog.result_schemas == {1: {"type": "object", "properties": {"price": {"type": "number"}}}}
    assert not catalog.executable and not catalog.chains


def test_builtin_and_bfcl_together():
    catalog = load_catalog(("builtin", "bfcl:simple_python"))
    assert len(catalog.executable) == 10 and len(catalog.chains) >= 5
    assert len(catalog) > 150  # about half of BFCL's 400 simple functions: the rest are eval-only
    builtin = {tool_name(t) for t in builtin_tools()}
    assert not any(bfcl_held_out(tool_name(t)) for t in catalog.tools if tool_name(t) not in builtin)


def test_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(WEATHER) + "\n" + json.dumps({"name": "f", "parameters": {"type": "set"}}) + "\n")
    with pytest.raises(ToolSchemaError, match=r"bad\.jsonl:2 'f'\.parameters\.type: unknown type 'set'"):
        load_catalog((str(bad),))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(WEATHER) + "\n{not json\n")
    with pytest.raises(ToolSchemaError, match=r"broken\.jsonl:2: not JSON"):
        load_catalog((str(broken),))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        validate_sources([str(tmp_path / "missing.json")])
    with pytest.raises(ValueError, match="unknown BFCL category 'java'"):
        validate_sources(["bfcl:java"])
    with pytest.raises(ValueError, match="at least one tool source"):
        validate_sources([])


@pytest.mark.parametrize("case", ["single", "parallel", "multiple", "multi_step", "no_tool"])
def test_plans_offer_distinct_names_and_target_offered_tools(case):
    catalog = load_catalog(("builtin", "bfcl"))
    for seed in range(40):
        plan = make_plan(case, catalog, random.Random(seed), n_offered=3, max_parallel=3)
        names = [tool_name(catalog.tools[i]) for i in plan.offered]
        assert len(names) == len(set(names)), names
        assert all(i in plan.offered for step in plan.steps for i in step)
        assert plan == make_plan(case, catalog, random.Random(seed), n_offered=3, max_parallel=3)
        expected_steps = {"single": 1, "parallel": 1, "multiple": 1, "multi_step": 2, "no_tool": 0}[case]
        assert len(plan.steps) == expected_steps
        if case == "multiple":
            assert len(plan.offered) == 3 and len(plan.steps[0]) == 1
        if case == "parallel":
            assert 2 <= len(plan.steps[0]) <= 3
        if case == "multi_step":
            assert (plan.steps[0][0], plan.steps[1][0]) in catalog.chains  # built-in chains come first


def test_plans_favour_tools_that_fit_the_persona():
    catalog = load_catalog(("builtin",))
    banker = {"occupation": "loan officer", "domain": "finance", "goals": "convert currency for exchange rates"}
    picks = [tool_name(catalog.tools[make_plan("single", catalog, random.Random(s), banker).offered[0]])
             for s in range(200)]
    money = sum(p in ("convert_currency", "get_exchange_rate") for p in picks)
    assert money > 200 * 2 / 10 * 1.5  # far above the 2-in-10 share a uniform draw gives


def test_seed_tools_become_a_catalog_and_builtins_stay_executable():
    tools = [STOCK, WEATHER, *builtin_tools()[:2]]
    catalog = catalog_from_tools(tools, {"stock_price": {"type": "object"}})
    assert len(catalog) == 4 and catalog.result_schemas == {0: {"type": "object"}}
    assert catalog.executable == {2, 3}
