"""Which prompts a generation step sends: chat prompts for instruct models, few-shot completions for base ones.

Every model-calling step has `template: auto | chat | fewshot`. `auto` (the default) picks `fewshot` for the
base models we know (the embedded Gemma 3 270M) and `chat` for everything else: an instruct model through
its own chat template, with JSON-schema decoding for structured output. The few-shot machinery (example
transcripts, stop strings, a second request for the answer) exists only for base models and is reached
only through `fewshot`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

Template = Literal["auto", "chat", "fewshot"]
BASE_MODELS = frozenset({"embedded-gemma-270m"})


def template_field() -> Any:
    return Field("auto", description="auto: fewshot for base models (embedded-gemma-270m), chat otherwise; "
                                     "chat: chat API for instruct models; fewshot: completion prompts for base models")


def prompt_style(template: str, llm_config: dict[str, Any] | None) -> str:
    if template != "auto":
        return template
    return "fewshot" if (llm_config or {}).get("model") in BASE_MODELS else "chat"


class PromptStyled:
    """Mixin for steps whose Params have `template`: `self.style` is the resolved "chat" or "fewshot"."""

    @property
    def style(self) -> str:
        return prompt_style(self.params.template, self.ctx.llm_config)  # type: ignore[attr-defined]
