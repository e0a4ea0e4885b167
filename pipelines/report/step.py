"""`report.html`: write the run report (`refinery report`) at the end of a recipe.

    report: {use: report.html, after: [final]}

It passes its input on unchanged (its output shards are its input shards, linked) and writes
RUN_DIR/report.html about every step of the run that has finished by then: put it after the last steps.
The samples it reports as kept are its input (the steps it comes after); `refinery report RUN_DIR`
rewrites the page at any time, for example after a later step or a review round.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params, Step


class ReportParams(Params):
    path: str = Field("report.html", description="output file; relative paths are inside the run directory")
    embedder: Literal["static", "minilm"] = Field(
        "static", description="embeddings of the diversity map: static (model2vec, fast) or minilm")
    max_map: int = Field(5000, ge=3, description="most kept samples embedded and plotted on the map")
    max_browser: int = Field(2000, ge=10, description="most samples the page's browser holds")


@register("report.html")
class Report(Step):
    kind = "barrier"
    split = True
    passthrough = True
    Params = ReportParams

    @classmethod
    def fingerprint_files(cls) -> list[Path]:
        here = Path(__file__).parent
        return [*(here / n for n in ("collect.py", "figures.py", "page.py")), *sorted((here / "templates").iterdir())]

    def keys(self, samples: Iterator[Sample]) -> None:
        return None  # the report reads the run directory itself: nothing of the shard is decoded

    def decide(self, keys: list[Any]) -> list[None]:
        from pipelines.report.page import build_report

        path = Path(self.params.path)
        p = self.params
        build_report(self.ctx.run_dir, path if path.is_absolute() else self.ctx.run_dir / path,
                     p.embedder, p.max_browser, p.max_map, during_run=True)
        return [None] * len(keys)
