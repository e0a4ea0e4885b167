"""generate.function_calling on the real embedded model: every case type gives structurally right tool-use
samples whose calls validate, render to LFM2 and parse back; drops carry reasons; reruns hit the cache."""

import json
from pathlib import Path

import pytest

from personas.bank import load_bank
from pipelines.core.sample import Sample
from pipelines.core.step import StepContext
from pipelines.formats.lfm2 import lfm2_view, parse_conversation, render
from pipelines.generators.function_calling import (FunctionCalling, FunctionCallingParams, _avoiding, _note_duplicate,
                                                   _note_repeated_enum, _served, _Work)
from pipelines.generators.templates import PROMPTS
from pipelines.generators.turn_checks import VOICE_REASONS
from pipelines.llm.cache import cache_report
from pipelines.llm.client import LLMConfig
from pipelines.tools.fewshot import check_example, load_examples
from pipelines.tools.catalog import load_catalog
from pipelines.tools.schema import tool_name, validate_calls
from pipelines.tools.grounding import ungrounded_values
from pipelines.tools.selection import Plan
from tests.tools.bfcl import questions

# The few-shot (base-model) strategy is what these tests exercise; the instruct default has its own tests.
BASE_MODEL = "embedded-gemma-270m"

CASES = ("single", "parallel", "multiple", "multi_step", "no_tool")
SHAPES = {  # roles, with the number of calls on each assistant turn that calls tools
    "single": ["user", "assistant:1", "tool", "assistant"],
    "multiple": ["user", "assistant:1", "tool", "assistant"],
    "multi_step": ["user", "assistant:1", "tool", "assistant:1", "tool", "assistant"],
    "no_tool": ["user", "assistant"],
}
REASONS = {"calls_unparseable", "result_unparseable", "tool_error", "empty_request", "empty_answer", "copied_example",
           "invalid_call", "degenerate_call", "wrong_tool", "duplicate_calls", "repeated_call", "ungrounded_argument",
           "ungrounded_answer", "invented_number", "echoed_tool_results", "request_names_tool",
           "not_a_request", "off_goal", "request_misses_value", *VOICE_REASONS}
# Shorter than the defaults: these tests check structure, not eloquence.
FAST = dict(n_examples=2, request_candidates=2, max_request_tokens=40, max_call_tokens=96, max_result_tokens=64,
            max_answer_tokens=32)


def seeds() -> list[Sample]:
    """Two seeds per case; the parallel ones carry a real BFCL tool, so their results are LLM-simulated."""
    spotify = questions()["parallel"][0]["function"]
    out = []
    for persona, case in zip(load_bank()[10:20], CASES * 2):
        meta = {"case": case, **({"tools": spotify} if case == "parallel" else {})}
        out.append(Sample(kind="seed", persona=persona.model_dump(), meta=meta))
    return out


def make_step(tmp_path: Path, **params) -> FunctionCalling:
    ctx = StepContext("fc", "test", "fp", tmp_path, llm_config=LLMConfig(model=BASE_MODEL, n_threads=1, seed=1).model_dump())
    return FunctionCalling(FunctionCallingParams(**{**FAST, **params}), ctx)


def run(tmp_path: Path, samples: list[Sample], **params) -> list[Sample]:
    step = make_step(tmp_path, **params)
    out = list(step.run(iter(samples)))
    step.ctx.close()
    return out


@pytest.fixture(scope="module")
def structural(tmp_path_factory):
    # Semantic checks off: calls decoded under their schemas are valid, so (nearly) every seed must come
    # out as a sample, and each case at least once.
    tmp = tmp_path_factory.mktemp("fc")
    return tmp, run(tmp, seeds(), checks=[])


def kept(out: list[Sample]) -> list[Sample]:
    return [s for s in out if not s.dropped]


def shape(s: Sample) -> list[str]:
    return [f"{m.role}:{len(m.tool_calls)}" if m.tool_calls else m.role for m in s.messages]


def test_every_case_gives_structurally_right_samples(structural):
    _, out = structural
    assert len(out) == 2 * len(CASES)
    for s in out:
        if s.dropped:
            assert s.verdicts[-1].reason in REASONS - {"ungrounded_argument", "degenerate_call", "duplicate_calls",
                                                       "repeated_call", "tool_error"}, s.verdicts[-1]
    assert {s.meta["case"] for s in kept(out)} == set(CASES)
    for s in kept(out):
        case = s.meta["case"]
        assert s.kind == "tool_use" and s.tools
        if case == "parallel":
            calls = len(s.messages[1].tool_calls)
            assert 2 <= calls <= 3 and shape(s) == ["user", f"assistant:{calls}", *["tool"] * calls, "assistant"]
        else:
            assert shape(s) == SHAPES[case], (case, shape(s))
        if case == "multiple":
            assert len(s.tools) == 3
        assert s.messages[0].content.strip() and s.messages[-1].content.strip()
        assert not s.messages[-1].tool_calls


def test_all_calls_validate_and_results_answer_their_calls(structural):
    _, out = structural
    for s in kept(out):
        calls = [c for m in s.messages for c in m.tool_calls]
        assert validate_calls(calls, s.tools) == []
        if s.meta["case"] != "parallel":  # a parallel turn may make fewer calls than planned
            assert [c.name for c in calls] == [n for step in s.meta["planned_calls"] for n in step]
        results = [m for m in s.messages if m.role == "tool"]
        assert [(m.name, m.tool_call_id) for m in results] == [(c.name, c.id) for c in calls]
        assert len({c.id for c in calls}) == len(calls)
        for m in results:
            assert isinstance(json.loads(m.content), dict)
    executors = {s.meta["case"]: s.provenance["executors"] for s in kept(out)}
    assert executors["parallel"] == {"spotify.play": "simulated"}
    assert set(executors["multi_step"].values()) == {"python"}


def test_provenance_names_process_template_persona_and_model(structural):
    _, out = structural
    for s in kept(out):
        p = s.provenance
        assert p["generator"] == "generate.function_calling" and p["case"] == s.meta["case"]
        assert p["template"] == "function_calling/fewshot_transcript.jinja" and len(p["template_hash"]) == 12
        assert p["persona_id"] == s.persona["id"] and p["model"].startswith("llama_cpp:gemma-3-270m")
        assert p["requests"] >= 2 and p["tokens_in"] > 0 and p["tokens_out"] > 0


def test_samples_render_to_lfm2_and_parse_back(structural):
    _, out = structural
    for s in kept(out):
        text = render(s.messages, s.tools)
        assert "<|tool_call_start|>" in text or s.meta["case"] == "no_tool"
        assert parse_conversation(text) == (lfm2_view(s.messages), s.tools)


def test_semantic_checks_drop_with_reasons_and_reuse_the_cache(structural):
    tmp, plain = structural
    checked = run(tmp, seeds())  # every check on; all requests but the choice checks come from the cache
    for before, s in zip(plain, checked):
        if s.dropped:
            v = s.verdicts[-1]
            assert v.reason in REASONS and v.filter == "fc" and v.details["case"] in CASES
        elif not (s.provenance["call_retries"] or any(s.provenance["candidates_picked"].values())
                  or s.provenance["first_calls"] == "from_request"):
            # A check only removes samples or, with best of n, keeps a later candidate; it never edits one.
            assert s.id == before.id
    assert cache_report(tmp / "llm_cache.sqlite")["prompts_sent_twice"] == 0
    again = run(tmp, seeds())
    assert [s.id for s in again] == [s.id for s in checked]
    assert all(s.provenance["cached"] == s.provenance["requests"] for s in again if not s.dropped)


def test_chat_template_mode(tmp_path):
    # Every stage through the chat API (semantic checks off, so the base model's sample goes all the way).
    [s] = run(tmp_path, [seeds()[0]], template="chat", checks=[])
    if s.dropped:  # a base model through chat prompts fails in many ways: each must be a named drop
        assert s.verdicts[-1].reason and s.verdicts[-1].filter == "fc"
    else:
        assert s.provenance["template"] == "function_calling/chat_calls.jinja"
        assert s.provenance["templates"]["request"] == "function_calling/chat_request.jinja"
        assert shape(s) == SHAPES["single"]
        assert validate_calls([c for m in s.messages for c in m.tool_calls], s.tools) == []


def test_shipped_examples_are_right():
    examples = load_examples(PROMPTS / "function_calling" / "examples.yaml")
    assert {e.case for e in examples} == set(CASES)
    for e in examples:
        assert check_example(e) == [], e.request


def test_a_retry_after_a_repeated_enum_value_cannot_decode_it_again():
    catalog = load_catalog(("builtin",))
    index = next(i for i, t in enumerate(catalog.tools) if tool_name(t) == "get_exchange_rate")
    w = _Work(Sample(kind="seed"), "single", catalog, Plan("single", (index,), ((index,),)), [])
    _note_repeated_enum(w, {"name": "get_exchange_rate", "arguments": {"base": "USD", "quote": "USD"}})
    assert w.avoid == {"get_exchange_rate.quote": {"USD"}}
    props = _avoiding(catalog.tools[index], w.avoid)["function"]["parameters"]["properties"]
    assert "USD" in props["base"]["enum"] and "USD" not in props["quote"]["enum"]
    assert "USD" in catalog.tools[index]["function"]["parameters"]["properties"]["quote"]["enum"]  # a copy


def test_planned_weather_calls_decode_only_served_cities_and_a_duplicate_city_is_not_decoded_again():
    from pipelines.tools.decoding import calls_schema
    from pipelines.tools.executors import builtin_executors, served_values

    catalog = load_catalog(("builtin",))
    index = next(i for i, t in enumerate(catalog.tools) if tool_name(t) == "get_weather")
    tool = catalog.tools[index]
    served = _served(tool)["function"]["parameters"]["properties"]["city"]["enum"]
    assert served == served_values("get_weather")["city"] and len(served) > 100
    assert all("error" not in builtin_executors()["get_weather"]({"city": c}) for c in served)
    assert "enum" not in tool["function"]["parameters"]["properties"]["city"]  # the stored tool is unchanged
    w = _Work(Sample(kind="seed"), "parallel", catalog, Plan("parallel", (index,), ((index, index),)), [])
    _note_duplicate(w, [{"name": "get_weather", "arguments": {"city": "Nairobi"}}] * 2)
    decoded = json.dumps(calls_schema([_avoiding(_served(tool), w.avoid)], 2, 2))
    assert '"Lagos"' in decoded and '"Nairobi"' not in decoded
    assert _avoiding(tool, w.avoid) == tool  # the prompt's copy has no enum to cut


def test_calls_are_read_off_a_request_that_misses_the_planned_values(tmp_path):
    # One request candidate of at most 8 tokens rarely states every planned value: such samples are
    # reanchored, their first calls decoded again from the request; what is kept is grounded in it.
    samples = [Sample(kind="seed", persona=p.model_dump(), meta={"case": "single"}) for p in load_bank()[40:48]]
    out = run(tmp_path, samples, request_candidates=1, max_request_tokens=8)
    reanchored = [s for s in out if s.provenance.get("first_calls") == "from_request"
                  or (s.dropped and "reanchored" in s.verdicts[-1].details)]
    assert reanchored, [s.verdicts[-1].to_dict() for s in out if s.dropped]
    for s in reanchored:
        if s.dropped:
            d = s.verdicts[-1].details
            assert s.verdicts[-1].reason in REASONS and d["reanchored"]["planned"] and d["reanchored"]["missing"]
            continue
        request, call = s.messages[0].content, s.messages[1].tool_calls[0]
        tool = next(t for t in s.tools if tool_name(t) == call.name)
        assert ungrounded_values(call.arguments, tool["function"]["parameters"], request) == []


def test_case_weights_shape_the_draw_and_bad_weights_are_refused(tmp_path):
    """The planner draws cases with the given weights (no model call is needed to plan)."""
    personas = load_bank()[:200]
    step = make_step(tmp_path, case_weights={"no_tool": 0.1})
    drawn = [step._start(Sample(kind="seed", persona=p.model_dump())).case for p in personas]
    share = drawn.count("no_tool") / len(drawn)
    assert share < 0.08 and set(drawn) >= {"single", "parallel", "multiple", "multi_step"}
    uniform = [make_step(tmp_path)._start(Sample(kind="seed", persona=p.model_dump())).case for p in personas]
    assert uniform.count("no_tool") / len(uniform) > 0.12  # the default draw is uniform over five cases
    for bad, problem in [({"no_tool": 0}, "must be > 0"), ({"chat": 1}, "")]:
        with pytest.raises(ValueError, match=problem):
            FunctionCallingParams(case_weights=bad)
    with pytest.raises(ValueError, match="not in cases"):
        FunctionCallingParams(cases=["single"], case_weights={"no_tool": 1})
