"""Exported rows survive the chat templates trainers actually apply.

Every shipped sample kind is exported with each `chat_format`, read back as a trainer reads it
(`load_version` / `decode_row`, nothing else between export and template) and rendered with each stock
template through transformers' chat-template rendering: TRL's (from the installed package) and the
llama.cpp and leap-finetune copies in `stock_templates/` (sources in its README). Where Refinery has the
template's dialect the render must be equal to ours, for every conversation the dialect can write.
"""

import datetime
from pathlib import Path

import pytest

from pipelines.core.sample import Message, Sample, ToolCall
from pipelines.export.builder import ExportOptions, VersionBuilder
from pipelines.export.registry import Registry
from pipelines.export.writer import write_version
from pipelines.formats.lfm2 import render
from pipelines.train.data import load_version
from pipelines.train.templates import chat_template
from tests.formats.samples import bfcl_samples, chat_samples, preference_samples, reasoning_samples, tiny_tokenizer

STOCK = Path(__file__).parent / "stock_templates"
DATE = "2026-01-15"


@pytest.fixture
def fixed_date(monkeypatch):
    """The LFM2.5 templates write strftime_now("%Y-%m-%d"); pin the clock transformers renders them with."""
    from transformers.utils import chat_template_utils

    class Fixed(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls.fromisoformat(DATE)

    monkeypatch.setattr(chat_template_utils, "datetime", Fixed)
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                   "required": ["city"]}}}
NOTE = {"type": "function", "function": {
    "name": "save_note", "description": "Save a note.",
    "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}}


def _tool_use(messages, tools=(WEATHER, NOTE), kind="tool_use") -> Sample:
    return Sample(kind=kind, messages=messages, tools=list(tools), provenance={"generator": "test.templates"})


def kinds() -> list[Sample]:
    """One sample per shape the generators ship, plus the strings that break naive quoting."""
    call = ToolCall("get_weather", {"city": "Paris", "unit": "celsius"})
    result = Message("tool", '{"temp_c": 18, "sky": "clear"}', name="get_weather")
    return [
        _tool_use([Message("user", "Weather in Paris?"), Message("assistant", "", tool_calls=[call]), result,
                   Message("assistant", "18 °C and clear in Paris."),
                   Message("user", "Thanks, and save that."), Message("assistant", "", tool_calls=[
                       ToolCall("save_note", {"text": "Paris: 18 °C, clear"})]),
                   Message("tool", '{"saved": true}', name="save_note"), Message("assistant", "Saved.")]),
        _tool_use([Message("system", "You are a travel helper."), Message("user", "Paris and Rome weather?"),
                   Message("assistant", "Checking both.", reasoning="Two cities: two calls at once.",
                           tool_calls=[call, ToolCall("get_weather", {"city": "Rome"}, id="call_2")]),
                   result, Message("tool", '{"temp_c": 24}', name="get_weather"),
                   Message("assistant", "Paris 18 °C, Rome 24 °C.", reasoning="Both results are in.")]),
        _tool_use([Message("user", "Tell me a joke about clouds."),
                   Message("assistant", "Why did the cloud break up? It needed space.")]),
        _tool_use([Message("user", "Save: it's a \"test\" \\ path C:\\tmp\nline two"),
                   Message("assistant", "", tool_calls=[ToolCall("save_note", {
                       "text": "it's a \"test\" \\ path C:\\tmp\nline two"})]),
                   Message("tool", "ok", name="save_note"), Message("assistant", "Saved it.")]),
        *chat_samples(4), *reasoning_samples(4), *bfcl_samples()[::25],
    ]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{chat_format: decoded SFT and preference conversations [(messages, tools)]} of one export each."""
    registry = Registry(tmp_path_factory.mktemp("stock") / "datasets")
    out = {}
    for chat_format in ("lfm2", "lfm2-leap", "lfm2.5", "structured"):
        name = f"stock-{chat_format.replace('.', '')}"
        builder = VersionBuilder(ExportOptions(name=name, validation=0.0, chat_format=chat_format, text=None))
        for s in kinds() + preference_samples(4):
            builder.add(s)
        write_version(registry, builder, {"recipe": "test"}, [])
        sft = load_version(f"{name}@latest", "sft", str(registry.root)).rows["train"]
        pref = load_version(f"{name}@latest", "preference", str(registry.root)).rows["train"]
        out[chat_format] = [(r["messages"], r["tools"]) for r in sft] + [
            (r["prompt"] + r[side], r["tools"]) for r in pref for side in ("chosen", "rejected")]
    return out


def stock(template: str, messages, tools) -> str:
    text = template if "{" in template else (STOCK / template).read_text(encoding="utf-8")
    return tiny_tokenizer().apply_chat_template(messages, tools=tools or None, chat_template=text, tokenize=False)


@pytest.mark.parametrize("chat_format, template, dialect", [
    ("lfm2", "trl:lfm2", "lfm2"),
    ("lfm2-leap", "leap-lfm2_chat_template.jinja", "lfm2"),
    ("lfm2-leap", "leap-lfm2_tool_call_chat_template.jinja", "lfm2"),
    ("lfm2.5", "trl:lfm2.5", "lfm2.5"),
    ("lfm2.5", "leap-lfm2_5_chat_template.jinja", "lfm2.5-canonical"),
    ("lfm2", "llama-cpp-lfm2.jinja", "lfm2-llamacpp"),
    ("lfm2.5", "llama-cpp-LFM2.5-8B-A1B.jinja", "lfm2.5-llamacpp"),
])
def test_the_stock_template_renders_exactly_what_we_render(exported, fixed_date, chat_format, template, dialect):
    text = chat_template(template[4:]) if template.startswith("trl:") else template
    compared = 0
    for messages, tools in exported[chat_format]:
        try:
            ours = render(messages, tools, dialect, date=DATE)
        except ValueError:  # lfm2.5 writes strings unescaped: an apostrophe cannot be rendered
            assert dialect in ("lfm2.5", "lfm2.5-llamacpp")
            continue
        assert stock(text, messages, tools) == ours
        compared += 1
    # Only the unescaped-string dialects skip a conversation (the one with quotes); the others write all.
    assert compared == len(exported[chat_format]) - (dialect in ("lfm2.5", "lfm2.5-llamacpp"))


def test_the_canonical_format_parses_back(exported):
    from pipelines.formats.lfm2 import lfm2_view, parse_conversation

    for messages, tools in exported["lfm2.5"]:
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        back, back_tools = parse_conversation(render(messages, tools, "lfm2.5-canonical", date=DATE),
                                              "lfm2.5-canonical")
        expected = [m if i == last or m.role != "assistant" else type(m)(m.role, m.content, None, m.tool_calls)
                    for i, m in enumerate(lfm2_view(messages))]
        assert (back, back_tools) == (expected, tools)


def test_the_structured_layout_loses_reasoning_under_every_lfm2_template(exported):
    """Why the layouts exist: the reasoning field is read by none of the LFM2 templates."""
    reasoning = [(m, t) for m, t in exported["structured"] if any(x.get("reasoning") for x in m)]
    assert reasoning
    for template in ("llama-cpp-lfm2.jinja", "leap-lfm2_chat_template.jinja", chat_template("lfm2")):
        for messages, tools in reasoning:
            rendered = stock(template, messages, tools)
            assert not any(m["reasoning"] in rendered for m in messages if m.get("reasoning"))


@pytest.mark.parametrize("dialect", ["lfm2", "lfm2.5"])
def test_refinerys_trainer_sees_the_same_text_whatever_the_layout(exported, dialect):
    """Only lfm2-leap moves text (its calls go before the answer); the other layouts render alike."""
    def texts(chat_format):
        out = []
        for messages, tools in exported[chat_format]:
            try:
                out.append(render(messages, tools, dialect))
            except ValueError:
                out.append(None)
        return out

    assert texts("lfm2") == texts("lfm2.5") == texts("structured")
    assert texts("lfm2-leap") != texts("lfm2")
