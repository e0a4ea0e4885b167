"""Which rows a sample makes, what drops it (with a verdict) and what fails the export (with its id)."""

import pytest

from pipelines.core.sample import Message, Sample, ToolCall
from pipelines.export.builder import ExportOptions, VersionBuilder
from pipelines.formats.trl import ConversionError
from tests.formats.samples import chat_samples, preference_samples


def tool_sample(name: str, value: str) -> Sample:
    return Sample(kind="tool_use", tools=[{"type": "function", "function": {"name": name, "parameters": {}}}],
                  messages=[Message("user", "Weather?"), Message("assistant", "", tool_calls=[ToolCall(name, {"city": value})])])


def test_rows_the_lfm2_format_cannot_express_fail_the_export_naming_the_sample():
    bad = tool_sample("get-weather", "Paris")
    with pytest.raises(ConversionError) as e:
        VersionBuilder(ExportOptions(name="x", text=None)).add(bad)
    assert bad.id in str(e.value) and "cannot be written in the lfm2 chat format" in str(e.value)
    quoted = tool_sample("get_weather", "Val d'Isère")
    assert VersionBuilder(ExportOptions(name="x", text="lfm2")).add(quoted) is None
    with pytest.raises(ConversionError, match="lfm2.5"):
        VersionBuilder(ExportOptions(name="x", text="lfm2.5")).add(quoted)


def test_samples_without_a_row_in_the_requested_formats_are_dropped_with_a_reason():
    b = VersionBuilder(ExportOptions(name="x", formats=("sft",)))
    verdict = b.add(preference_samples(1)[0])
    assert verdict is not None and not verdict.keep and verdict.reason == "no_sft_row"
    assert b.add(chat_samples(1)[0]) is None
    assert b.counts()["dropped"] == {"no_sft_row": 1} and b.counts()["samples_exported"] == 1


def test_the_review_snapshot_comes_from_reviewed_samples_unless_given():
    reviewed = Sample(kind="chat", messages=[Message("user", "q"), Message("assistant", "a")],
                      meta={"review": {"snapshot": "reviews/quickstart-chat/v0002"}})
    b = VersionBuilder(ExportOptions(name="x"))
    b.add(reviewed)
    assert b.review_snapshot() == "reviews/quickstart-chat/v0002"
    b = VersionBuilder(ExportOptions(name="x", review_snapshot="manual-7"))
    b.add(reviewed)
    assert b.review_snapshot() == "manual-7"
