"""Shared by the generator tests: a step context on the real embedded model (one thread, fixed seed)."""

from pathlib import Path

from pipelines.core.registry import get_component
from pipelines.core.step import Step, StepContext
from pipelines.llm.client import LLMConfig

# The few-shot (base-model) strategy is what these tests exercise; the instruct default has its own tests.
BASE_MODEL = "embedded-gemma-270m"

MODEL_PREFIX = "llama_cpp:gemma-3-270m"


def make_step(name: str, tmp: Path, llm: bool = True, **params) -> Step:
    cls = get_component(name)
    cfg = LLMConfig(model=BASE_MODEL, n_threads=1, seed=3).model_dump() if llm else None
    return cls(cls.Params(**params), StepContext(name, "test", "fp", tmp, llm_config=cfg))


def run(step: Step, samples) -> list:
    try:
        return list(step.run(iter(samples)))
    finally:
        step.ctx.close()


def assert_provenance(s, generator: str, template: str) -> None:
    p = s.provenance
    assert p["generator"] == generator and p["template"] == template, p
    assert len(p["template_hash"]) == 12
    assert p["model"].startswith(MODEL_PREFIX) and p["backend"] == "llama_cpp"
    assert "persona_id" in p and p["persona_id"] == (s.persona or {}).get("id")
    assert p["requests"] >= 1 and p["tokens_in"] > 0 and p["tokens_out"] > 0
