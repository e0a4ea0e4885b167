"""What the batch generators (evolve, grounded, reasoning, candidates) share: a map step that sends its
samples to the model `batch_size` at a time, stage by stage, recording each failed stage as a drop."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from pipelines.core.sample import Sample
from pipelines.core.step import Step
from pipelines.generators import calls, turn_checks, user_voice
from pipelines.generators.calls import Usage, drop, request_drop, run_batch, tidy
from pipelines.generators.turn_checks import voice_problem
from pipelines.generators.templates import derive_seed, files_in
from pipelines.llm.client import Request
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
              asked: str = "", check: Callable[[str], str | None] | None = None, **details: Any) -> str | None:
        """The tidied text of a result, or None after recording the sample's drop. voice: "user" or
        "assistant", for a message that joins the conversation: an instruct model's failures of that role
        (`turn_checks.voice_problem`: letters, placeholders, truncation, ...) are drops too. check: the
        stage's own test of the tidied text (its drop reason, or None)."""
        if isinstance(result, RequestError):
            done[s.id] = request_drop(s, self.ctx, result, stage)
            return None
        out = result[0]
        raw = out.text
        if isinstance(out.parsed, dict):  # a user message asked for as test data (user_voice)
            raw = next(iter(user_voice.messages(out)), "")
        problem = None
        if voice is not None and getattr(self, "style", None) == "chat":
            problem = voice_problem(voice, raw.strip(), out.finish_reason, asked,
                                    calls.persona_traits(s) if voice == "user" else "")
        text = tidy(raw, out.finish_reason == "length")
        if problem is None and not text:
            problem = f"empty_{stage.split('_')[0]}"  # rounds of one stage (evolve_0, evolve_1) share one reason
        if problem is None and check is not None:
            problem = check(text)
        if problem is None:
            return text
        done[s.id] = drop(s, self.ctx, problem, stage=stage, raw=raw[:4000], **details)
        return None

    def _stage(self, live: list[Sample], request: Callable[[Sample, int], Request], stage: str,
               done: dict[str, Sample], usage: dict[str, Usage], retries: int,
               checks: Callable[[Sample], dict[str, Any]] = lambda s: {}) -> dict[str, str]:
        """One stage over the live samples: each sample's text (`_text` with `checks(sample)`), a failed one
        asked again with a new seed up to `retries` times (request(sample, attempt)); a sample that fails
        every attempt is dropped with its last reason. Retrying only the failures costs a fraction of asking
        every sample for several candidates (the 0.5B teacher: 10 evolve samples, 3 candidates per stage,
        294 s of model time)."""
        texts: dict[str, str] = {}
        pending = live
        for attempt in range(retries + 1):
            failed: dict[str, Sample] = {}
            retry = []
            for s, result in zip(pending, run_batch(self.ctx, [request(s, attempt) for s in pending])):
                usage[s.id].add(result)
                text = self._text(s, result, stage, failed, **checks(s))
                if text is not None:
                    texts[s.id] = text
                elif attempt < retries and not isinstance(result, RequestError):
                    retry.append(s)
                else:
                    done[s.id] = failed[s.id]
            pending = retry
        return texts

    def _shots(self, s: Sample, key: str, pool: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Few-shot examples for one request, drawn per sample and request so reruns draw the same."""
        rng = random.Random(derive_seed(self.ctx.llm_config["seed"], s.id, "examples", key))
        return rng.sample(pool, min(self.params.n_examples, len(pool)))
