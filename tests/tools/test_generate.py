"""tools.generate: compact specs become valid tools with result schemas; on the real embedded model, a
persona seed leaves with checked tools (or is dropped with every reason), ready for function calling."""

import jsonschema
import pytest

from personas.bank import load_bank
from pipelines.core.sample import Sample
from pipelines.core.step import StepContext
from pipelines.generators.templates import examples
from pipelines.llm.client import LLMConfig
from pipelines.tools.generate import EXAMPLES, SPEC_SCHEMA, GenerateTools, GenerateToolsParams, spec_to_tool
from pipelines.tools.schema import ToolSchemaError, check_schema

# The few-shot (base-model) strategy is what these tests exercise; the instruct default has its own tests.
BASE_MODEL = "embedded-gemma-270m"

SPEC = {"name": "track_shipment", "description": "Status of a shipment.",
        "params": [{"name": "tracking_number", "type": "string", "description": "Its number."},
                   {"name": "carrier", "type": "string", "description": "Carrier.", "values": ["dhl", "ups"],
                    "required": False}],
        "returns": [{"name": "status", "type": "string", "description": "Where it is."}]}


def test_spec_becomes_a_tool_and_a_result_schema():
    tool, result = spec_to_tool(SPEC)
    params = tool["function"]["parameters"]
    assert params["required"] == ["tracking_number"] and params["properties"]["carrier"]["enum"] == ["dhl", "ups"]
    assert result["required"] == ["status"] and result["additionalProperties"] is False
    check_schema(params)
    check_schema(result)


@pytest.mark.parametrize("change, message", [
    ({"params": [SPEC["params"][0], SPEC["params"][0]]}, "appears twice"),
    ({"params": [{**SPEC["params"][0], "type": "integer", "values": ["a", "b"]}]}, "values must be distinct strings"),
    ({"params": [{**SPEC["params"][0], "required": False}]}, "at least one parameter must be required"),
    ({"returns": SPEC["returns"] * 2}, "returned field appears twice"),
])
def test_specs_that_make_no_sense_are_refused(change, message):
    with pytest.raises(ToolSchemaError, match=message):
        spec_to_tool({**SPEC, **change})


def test_shipped_tool_examples_fit_the_decoding_schema():
    for e in examples(EXAMPLES):
        jsonschema.validate(e["tool"], SPEC_SCHEMA)
        spec_to_tool(e["tool"])


def test_real_model_invents_checked_tools_for_the_persona_domain(tmp_path):
    persona = load_bank()[3].model_dump()
    ctx = StepContext("tools", "test", "fp", tmp_path, llm_config=LLMConfig(model=BASE_MODEL, n_threads=1, seed=0).model_dump())
    step = GenerateTools(GenerateToolsParams(n_tools=1, min_tools=1, n_examples=2, max_tool_tokens=240), ctx)
    [out] = list(step.run(iter([Sample(kind="seed", persona=persona)])))
    ctx.close()
    if out.dropped:
        v = out.verdicts[-1]
        assert v.reason == "too_few_valid_tools" and len(v.details["rejected"]) == 1
        return
    assert out.meta["tool_domain"] == persona["domain"]
    tools, results = out.meta["tools"], out.meta["result_schemas"]
    assert len(tools) == 1 and set(results) == {t["function"]["name"] for t in tools}
    for t in tools:
        check_schema(t["function"]["parameters"])
        check_schema(results[t["function"]["name"]])
    assert out.provenance["tools"]["generator"] == "tools.generate"
    assert out.provenance["tools"]["rejected"] == []
