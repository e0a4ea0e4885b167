"""Recipe steps: `review.push` ends a generate recipe, `review.pull` starts a publish recipe.

    review: {use: review.push, after: [dedup], dataset: quickstart, min_submitted: 2}
    ...
    reviewed: {use: review.pull, snapshot: reviews/quickstart-chat/v0001, policy: majority}

The server comes from ARGILLA_API_URL + ARGILLA_API_KEY, else the running local stack; keys never go in a
recipe. `review.pull` reads a frozen snapshot written by `refinery review pull`, not the live server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field

from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.step import Params, Step


class PushParams(Params):
    dataset: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
                         description="dataset base name; samples go to <dataset>-<kind>, one dataset per kind")
    workspace: str = Field("refinery", description="Argilla workspace (created if missing)")
    min_submitted: int = Field(1, ge=1, le=10, description="task distribution: answers a record needs")
    batch_size: int = Field(200, ge=1, le=500, description="records per bulk request")
    concurrency: int = Field(2, ge=1, le=8, description="bulk requests in flight")
    vectors: Literal["none", "minilm", "meta"] = Field(
        "none", description='"find similar" vectors: all-MiniLM-L6-v2, or meta["embedding"] (384 floats)')
    judge: Optional[str] = Field("judge", description="filter whose verdict and score pre-fill suggestions")
    answers: int = Field(3, ge=2, le=8,
                         description="preference: answer slots (generate.candidates makes 3 by default)")
    guidelines: Optional[str] = Field(None, description="markdown file replacing the bundled guidelines")
    retry_for: float = Field(60.0, ge=0, description="seconds to keep retrying while the server is away")


@register("review.push")
class ReviewPush(Step):
    """Sends every sample to Argilla and passes them on unchanged. A barrier, so one process pushes: a
    rerun after a crash resumes from the push journal in the run directory."""

    kind = "barrier"
    Params = PushParams

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        from review_ui.connection import resolve
        from review_ui.push import Pusher, PushOptions

        pusher = Pusher(resolve(), PushOptions(**self.params.model_dump()), self.ctx.run_dir / "review" / "journal")
        try:
            for s in samples:
                pusher.feed(s)
                yield s
        except BaseException:
            pusher.close()
            raise
        report = pusher.finish()
        for d in report.datasets.values():
            self.ctx.counters[f"pushed_{d.kind}"] += d.sent
            self.ctx.counters[f"already_pushed_{d.kind}"] += d.skipped
            self.ctx.counters[f"on_server_{d.kind}"] += d.on_server or 0


class PullParams(Params):
    snapshot: str = Field(description="snapshot folder written by `refinery review pull`, e.g. "
                                      "reviews/quickstart-chat/v0001 (relative to the working directory)")
    policy: Literal["majority", "unanimous", "latest"] = Field("majority", description="conflict policy")
    min_votes: Optional[int] = Field(None, ge=1, description="votes a record needs (default: the dataset's "
                                                             "min_submitted when it was pulled)")
    pairs: Literal["best_vs_worst", "best_vs_second"] = Field(
        "best_vs_worst", description="preference: the rejected answer is the worst, or the next-best one")


@register("review.pull")
class ReviewPull(Step):
    """Reviewed samples from a frozen snapshot: accepted ones with corrections merged (preference: chosen
    answer + rejected candidates); rejected, conflicting and pending ones dropped with their reason."""

    kind = "source"
    Params = PullParams

    @classmethod
    def input_paths(cls, params: dict) -> dict[tuple, Path]:
        return {("snapshot",): Path(params["snapshot"])}

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        from review_ui.merge import merge_record
        from review_ui.pull import read_snapshot

        folder = Path(self.params.snapshot)
        manifest, rows = read_snapshot(folder)
        label = f"{manifest['dataset']}@v{manifest['version']:04d}"
        min_votes = self.params.min_votes or manifest["min_submitted"]
        for row in rows:
            yield merge_record(row, policy=self.params.policy, min_votes=min_votes, pairs=self.params.pairs,
                               filter_name=self.ctx.step_name, snapshot=label)
