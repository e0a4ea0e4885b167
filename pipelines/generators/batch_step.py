"""What the batch generators (evolve, grounded, reasoning, candidates) share: a map step that sends its
samples to the model `batch_size` at a time, stage by stage, recording each failed stage as a drop."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pipelines.core.sample import Sample
from pipelines.core.step import Step
from pipelines.generators import calls, turn_checks, user_voice
from pipelines.generators.calls import drop, request_drop, tidy
from pipelines.generators.turn_checks import voice_problem
from pipelines.generators.templates import derive_seed, files_in
from pipelines.llm.errors import RequestError

HERE = Path(__file__)


class BatchGenerator(Step, ABC):
    """Subclasses set `Params` (with batch_size and n_examples), `prompt_folders`, and implement `_batch`."""

    kind = "map"
    uses_llm = True
    # Prompt folders the step renders from: their files are part of its fingerprint.
    prompt_folders: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def fingerprint_files(cls) -> list:
        return [*(f for folder in cls.prompt_folders for f in files_in(folder)), calls.HERE, HERE,
                Path(turn_checks.__file__), *user_voice.fingerprint_files()]

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        for batch in calls.batches(samples, self.params.batch_size):
            yield from self._batch(batch)

    @abstractmethod
    def _batch(self, batch: list[Sample]) -> list[Sample]:
        """The batch's output samples, in input order (kept or dropped with a verdict)."""

    def _text(self, s: Sample, result: Any, stage: str, done: dict[str, Sample], voice: str | None = None,
              asked: str = "") -> str | None:
        """The tidied text of a result, or None after recording the sample's drop. voice: "user" or
        "assistant", for a message that joins the conversation: an instruct model's failures of that role
        (`turn_checks.voice_problem`: letters, placeholders, truncation, ...) are drops too."""
        if isinstance(result, RequestError):
            done[s.id] = request_drop(s, self.ctx, result, stage)
            return None
        raw, truncated = calls.first_text(result)
        if isinstance(result[0].parsed, dict):  # a user message asked for as test data (user_voice)
            raw = next(iter(user_voice.messages(result[0])), "")
        if voice is not None and getattr(self, "style", None) == "chat":
            problem = voice_problem(voice, raw.strip(), result[0].finish_reason, asked,
                                    calls.persona_text(s) or "" if voice == "user" else "")
            if problem is not None:
                done[s.id] = drop(s, self.ctx, problem, stage=stage, raw=raw[:4000])
                return None
        text = tidy(raw, truncated)
        if not text:
            # Rounds of one stage (evolve_0, evolve_1) share one reason.
            done[s.id] = drop(s, self.ctx, f"empty_{stage.split('_')[0]}", raw=result[0].text)
            return None
        return text

    def _shots(self, s: Sample, key: str, pool: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Few-shot examples for one request, drawn per sample and request so reruns draw the same."""
        rng = random.Random(derive_seed(self.ctx.llm_config["seed"], s.id, "examples", key))
        return rng.sample(pool, min(self.params.n_examples, len(pool)))
