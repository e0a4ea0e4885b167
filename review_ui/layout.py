"""What annotators see for each sample kind: fields, questions and metadata properties, as plain data.

Kept free of the argilla SDK so the rules (names, question values, which kinds exist) are importable by
the record builder, the merge and `refinery validate` without loading anything; `review_ui.datasets`
turns a `Layout` into SDK settings when a dataset is created.

- chat, reasoning: the conversation as a chat field; the model's thinking in its own field (reasoning).
- tool_use: the conversation with calls shown as Python-style calls; the offered tools as a table.
- preference: the prompt as a chat field, each answer in its own field, and a ranking question.
Questions everywhere: accept/reject (`verdict`) and a free-text `rationale`; chat-like kinds add a 1-5
`quality` rating and `corrected_answer`, pre-filled with the model's final answer for in-place editing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REVIEW_KINDS = ("chat", "reasoning", "tool_use", "preference")
GUIDELINES_DIR = Path(__file__).parent / "guidelines"

VERDICT = "verdict"
QUALITY = "quality"
CORRECTION = "corrected_answer"
RATIONALE = "rationale"
RANKING = "ranking"
ACCEPT, REJECT = "accept", "reject"
EMBEDDING = "embedding"
SAMPLE_KEY = "_sample"  # extra metadata: the whole Sample as JSON, hidden from annotators

# Metadata properties declared on every dataset (filterable in the UI); filter scores are added as
# float properties named score_<filter> when a sample first carries one. Kept few on purpose: argilla-server
# 2.8 builds a pydantic validator per declared property for every record it ingests, which dominates its
# ingest time. Left out: kind (one dataset per kind) and free-text persona attributes (occupation, goals).
TERMS_METADATA = ("generator", "model", "persona_domain", "persona_region", "persona_age_band",
                  "persona_expertise", "persona_style")
INTEGER_METADATA = ("n_turns", "n_chars", "answer_chars")
KIND_INTEGER_METADATA = {
    "chat": (),
    "reasoning": ("reasoning_chars",),
    "tool_use": ("n_tools", "n_tool_calls"),
    "preference": ("n_answers",),
}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    title: str
    type: str  # "chat" | "text"
    required: bool = True


@dataclass(frozen=True)
class Layout:
    kind: str
    fields: tuple[FieldSpec, ...]
    questions: tuple[str, ...]
    integer_metadata: tuple[str, ...]
    answer_slots: int = 0  # preference only

    @property
    def answer_names(self) -> list[str]:
        return [f"answer_{i}" for i in range(1, self.answer_slots + 1)]

    def guidelines(self, override: str | None = None) -> str:
        path = Path(override) if override else GUIDELINES_DIR / f"{self.kind}.md"
        if not path.is_file():
            raise FileNotFoundError(f"annotation guidelines not found: {path}")
        return path.read_text(encoding="utf-8")


def layout_for(kind: str, answer_slots: int = 3) -> Layout:
    if kind not in REVIEW_KINDS:
        raise ValueError(f"samples of kind {kind!r} cannot be reviewed; reviewable kinds: {REVIEW_KINDS}")
    ints = INTEGER_METADATA + KIND_INTEGER_METADATA[kind]
    if kind == "preference":
        if answer_slots < 2:
            raise ValueError(f"a preference dataset needs at least 2 answer slots, got {answer_slots}")
        answers = tuple(FieldSpec(f"answer_{i}", f"Answer {i}", "text", required=i <= 2)
                        for i in range(1, answer_slots + 1))
        return Layout(kind, (FieldSpec("prompt", "Prompt", "chat"), *answers), (RANKING, VERDICT, RATIONALE), ints,
                      answer_slots)
    fields = [FieldSpec("conversation", "Conversation", "chat")]
    if kind == "reasoning":
        fields.append(FieldSpec("reasoning", "Model's reasoning (kept apart from the answer)", "text", False))
    if kind == "tool_use":
        fields.append(FieldSpec("tools", "Tools offered to the model", "text", False))
    return Layout(kind, tuple(fields), (VERDICT, QUALITY, CORRECTION, RATIONALE), ints)


def dataset_name(base: str, kind: str) -> str:
    """One Argilla dataset per kind: each kind has its own fields and questions."""
    return f"{base}-{kind}"
