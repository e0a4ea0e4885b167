"""The closed loop as recipe steps: `train.sft` trains a student on the version an export step just wrote,
`eval.functional` evaluates a model (named, or the checkpoint a train step wrote), `eval.compare` writes the
before/after comparison. Each is a barrier that passes its samples through unchanged and does its work when
its input ends, so the loop is one recipe, fingerprinted and resumable like any other (recipes/loop.yaml):

    export -> eval_before -> train -> eval_after -> compare

What each writes into the run directory: `train-STEP.json` (checkpoint folder, dataset version, summary) and
the checkpoint under `train-STEP/`; `eval-STEP/` (items.jsonl, summary.json); `compare-STEP.json`, which
`refinery status` shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from pipelines.core.registry import register
from pipelines.core.sample import Sample
from pipelines.core.shards import write_json_atomic
from pipelines.core.step import Params, Step


class _AfterInput(Step):
    """A barrier that passes its samples through unchanged and does its work once the input has ended."""

    kind = "barrier"

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        for s in samples:
            self.see(s)
            yield s
        self.finish()

    def see(self, sample: Sample) -> None:
        """Each sample as it passes (nothing is kept unless a step keeps it)."""

    def finish(self) -> None:
        raise NotImplementedError


def _record(run_dir: Path, kind: str, step: str) -> dict[str, Any]:
    path = run_dir / f"{kind}-{step}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path.name} not found: step {step!r} must be a finished {kind} step of this recipe")
    return json.loads(path.read_text(encoding="utf-8"))


class TrainParams(Params):
    dataset_from: str = Field(description="the export.dataset step whose version this trains on")
    model: str = Field("smollm2-135m", description="a named student (smollm2-135m) or a local checkpoint folder")
    method: str = Field("sft", pattern="^sft$", description="sft (DPO: refinery train dpo on the preference export)")
    config: dict[str, Any] = Field(default_factory=dict, description="refinery train sft config keys "
                                   "(learning_rate, max_steps, num_train_epochs, lora, ...)")

    @field_validator("config")
    @classmethod
    def _trainable(cls, config: dict[str, Any]) -> dict[str, Any]:
        import dataclasses

        from pydantic import TypeAdapter

        from pipelines.train.config import SFTRunConfig, _check_values

        fixed = {"model", "dataset", "output_dir", "registry"} & set(config)
        if fixed:
            raise ValueError(f"config may not set {sorted(fixed)}: the step sets them")
        names = {f.name for f in dataclasses.fields(SFTRunConfig)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ValueError(f"unknown train config key {unknown[0]!r} (refinery train sft --help lists them)")
        # Every value checked before a run starts, as `refinery train sft` checks a config file.
        cfg = TypeAdapter(SFTRunConfig).validate_python(
            {"model": "m", "dataset": "d@latest", "output_dir": "o", **config})
        if bad := _check_values(cfg):
            raise ValueError(f"train config {bad[0][0]}: {bad[0][1]}")
        return config


@register("train.sft")
class TrainSFT(_AfterInput):
    Params = TrainParams

    def finish(self) -> None:
        from pipelines.train.config import SFTRunConfig
        from pipelines.train.sft import train_sft

        export = _record(self.ctx.run_dir, "export", self.params.dataset_from)
        out = self.ctx.run_dir / f"train-{self.ctx.step_name}"
        cfg = SFTRunConfig(model=self.params.model, dataset=export["dataset"], output_dir=str(out),
                           registry=str(Path(export["path"]).parents[1]), **self.params.config)
        summary = train_sft(cfg)
        self.ctx.counters["trained_tokens"] += summary["tokens"]
        write_json_atomic(self.ctx.run_dir / f"train-{self.ctx.step_name}.json",
                          {"checkpoint": str(out.resolve()), "dataset": export["dataset"], "summary": summary})


class EvalParams(Params):
    model: str | None = Field(None, description="the model to evaluate (GGUF or embedded name, checkpoint "
                                                "folder, or a named student)")
    model_from: str | None = Field(None, description="or: a train.sft step of this recipe, whose checkpoint")
    suites: list[str] = Field(description="eval suites (refinery eval --help lists them)")
    limit: int | None = Field(20, ge=1, description="first N items of each suite")
    formats: list[str] = Field(["lfm2", "json"], description="prompt formats; the better one counts")

    @model_validator(mode="after")
    def _one_model(self) -> "EvalParams":
        from pipelines.evals.prompting import FORMATS
        from pipelines.evals.suites import SUITES

        if (self.model is None) == (self.model_from is None):
            raise ValueError("give exactly one of model and model_from")
        bad = [s for s in self.suites if s not in SUITES] + [f for f in self.formats if f not in FORMATS]
        if bad:
            raise ValueError(f"unknown suite or format {bad[0]!r}; suites: {', '.join(SUITES)}; "
                             f"formats: {', '.join(FORMATS)}")
        return self


@register("eval.functional")
class FunctionalEval(_AfterInput):
    Params = EvalParams

    def __init__(self, params: Params, ctx: Any) -> None:
        super().__init__(params, ctx)
        self.texts: list[str] = []  # the training data's user messages, for the 13-gram overlap check

    def see(self, sample: Sample) -> None:
        self.texts += [m.content for m in sample.messages if m.role == "user"]

    def finish(self) -> None:
        from pipelines.evals.runner import evaluate
        from pipelines.train.students import STUDENTS, student_path

        p = self.params
        model = p.model or _record(self.ctx.run_dir, "train", p.model_from)["checkpoint"]  # type: ignore[arg-type]
        if model in STUDENTS:
            model = str(student_path(model))
        summary = evaluate(model, p.suites, self.ctx.run_dir / f"eval-{self.ctx.step_name}", p.formats, p.limit,
                           training_texts=self.texts)
        for suite, best in summary["best"].items():
            self.ctx.counters[f"eval_{suite}_correct"] += best["correct"]


class CompareParams(Params):
    before: str = Field(description="the eval.functional step of the model before training")
    after_eval: str = Field(description="the eval.functional step of the model after training")


@register("eval.compare")
class EvalCompare(_AfterInput):
    Params = CompareParams

    def finish(self) -> None:
        from pipelines.evals.compare import compare

        run_dir = self.ctx.run_dir
        result = compare(run_dir / f"eval-{self.params.before}", run_dir / f"eval-{self.params.after_eval}")
        write_json_atomic(run_dir / f"compare-{self.ctx.step_name}.json", result)
