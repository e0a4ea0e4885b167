"""`export.dataset`: the recipe sink that publishes its input as the next version of a named dataset.

    export: {use: export.dataset, after: [dedup], name: quickstart}

A barrier step: it sees every sample, converts each to TRL rows as it streams (a sample it cannot convert
fails the run with the sample's id; one that yields no row is dropped with a verdict saying why), and when
the input ends writes the version into the registry. Samples pass through unchanged, so other steps may
follow it. An export whose rows equal the latest version's returns that version instead of a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field

from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.shards import write_json_atomic
from pipelines.core.step import Params, Step
from pipelines.formats.chat_formats import CHAT_FORMATS
from pipelines.formats.pythonic_calls import DIALECTS


class ExportParams(Params):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="dataset name in the registry")
    registry: str | None = Field(None, description="registry folder (default: $REFINERY_DATASETS or ./datasets)")
    formats: list[Literal["sft", "preference"]] = Field(
        ["sft", "preference"], min_length=1, description="tables to write: SFT rows and/or preference pairs")
    validation: float = Field(0.1, ge=0.0, lt=1.0, description="share of split groups held out for validation")
    split_by: list[Literal["persona", "source", "prompt"]] = Field(
        ["persona", "source", "prompt"], description="samples sharing any of these stay in the same split")
    split_seed: int = Field(0, description="seed of the split hash")
    text: Literal[(*DIALECTS, "none")] = Field(
        "lfm2", description="add columns with each conversation rendered in this LFM2 dialect (docs/export.md)")
    template_date: str | None = Field(
        None, pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="the \"Today's date:\" line of lfm2.5-canonical text (default: the export's UTC date)")
    chat_format: Literal[CHAT_FORMATS] = Field(
        "lfm2", description="where assistant turns carry reasoning and tool calls, for the chat template that "
                            "will render them (docs/export.md)")
    review_snapshot: str | None = Field(None, description="id of the review snapshot these samples come from")
    source_run: str | None = Field(
        None, description="the finished run these samples were read from (its funnel goes in the manifest)")
    description: str | None = Field(None, description="a sentence for the dataset card")


@register("export.dataset")
class ExportDataset(Step):
    kind = "barrier"
    Params = ExportParams

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        from pipelines.export.builder import ExportOptions, VersionBuilder
        from pipelines.export.registry import Registry
        from pipelines.export.runs import run_funnel
        from pipelines.export.writer import write_version

        p = self.params
        options = ExportOptions(
            name=p.name, formats=tuple(p.formats), validation=p.validation, split_by=tuple(p.split_by),
            split_seed=p.split_seed, text=None if p.text == "none" else p.text, chat_format=p.chat_format,
            template_date=p.template_date, review_snapshot=p.review_snapshot, description=p.description)
        builder = VersionBuilder(options)
        for sample in samples:
            verdict = builder.add(sample)
            yield sample if verdict is None else sample.with_verdict(verdict)

        funnel = []
        if p.source_run:
            funnel += [{**f, "run": p.source_run} for f in run_funnel(Path(p.source_run))]
        funnel += run_funnel(self.ctx.run_dir, self.ctx.step_name)
        origin = {"recipe": self.ctx.recipe_name, "run_dir": str(self.ctx.run_dir), "step": self.ctx.step_name,
                  "fingerprint": self.ctx.fingerprint, "source_run": p.source_run}
        ref, reused = write_version(Registry(p.registry), builder, origin, funnel)
        rows = Registry.manifest(ref)["counts"]["rows"]
        for config, n in rows.items():
            self.ctx.counters[f"export_rows_{config}"] += n
        # What was published, for `refinery status`-style tooling and for the person reading the run folder.
        write_json_atomic(self.ctx.run_dir / f"export-{self.ctx.step_name}.json",
                          {"dataset": str(ref), "path": str(ref.path.resolve()), "reused": reused, "rows": rows})
