"""The persona record that drives one generated conversation.

A persona is a handful of attributes (who, where, what they want, how they write) plus a description a
generator can drop into a prompt. External persona sets often carry only a description, so every
attribute defaults to "unknown" rather than being required.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from pipelines.core.sample import content_hash

UNKNOWN = "unknown"
ATTRIBUTE_FIELDS: tuple[str, ...] = (
    "occupation",
    "domain",
    "region",
    "age_band",
    "expertise",
    "goals",
    "communication_style",
)
EXPERTISE_LEVELS: tuple[str, ...] = ("novice", "intermediate", "expert")

Expertise = Literal["novice", "intermediate", "expert", "unknown"]


def persona_id(attributes: dict[str, str], description: str) -> str:
    """Content hash of the attributes and the description.

    The description is part of the hash because external sets may carry nothing else: without it every
    description-only persona would hash to the same all-"unknown" attribute dict.
    """
    return content_hash({"attributes": attributes, "description": description})


class Persona(BaseModel):
    # frozen: the id is a hash of the other fields, so editing one in place would leave a stale id.
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = ""
    occupation: str = UNKNOWN
    domain: str = UNKNOWN
    region: str = UNKNOWN
    age_band: str = UNKNOWN
    expertise: Expertise = UNKNOWN
    goals: str = UNKNOWN
    communication_style: str = UNKNOWN
    description: str

    @field_validator(*ATTRIBUTE_FIELDS, mode="before")
    @classmethod
    def _normalise_attribute(cls, value: Any) -> Any:
        # External sets write a missing value as null, "" or NaN (parquet), and some give numbers (age 34);
        # map them onto one vocabulary so stratification and coverage see a single "unknown" bucket.
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return UNKNOWN
        if isinstance(value, bool):
            return value  # let the str check reject it rather than turning True into "True"
        if isinstance(value, (int, float)):
            value = str(value)
        if isinstance(value, str):
            value = " ".join(value.split())
            return value or UNKNOWN
        return value

    @field_validator("expertise", mode="before")
    @classmethod
    def _lower_expertise(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("description")
    @classmethod
    def _clean_description(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("description must not be empty")
        return value

    @model_validator(mode="after")
    def _fill_or_check_id(self) -> Persona:
        expected = persona_id(self.attributes(), self.description)
        if not self.id:
            # Bypasses frozen on purpose: this is construction, not mutation.
            object.__setattr__(self, "id", expected)
        elif self.id != expected:
            raise ValueError(
                f"id {self.id!r} does not match the persona's content (hash {expected!r}); "
                "edited by hand? Drop the id to have it recomputed"
            )
        return self

    def attributes(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in ATTRIBUTE_FIELDS}


def normalise_description(text: str) -> str:
    """Lower-case words only, so punctuation or spacing edits do not hide a duplicate."""
    return " ".join(re.findall(r"\w+", text.casefold()))


def dedupe_personas(personas: Iterable[Persona]) -> list[Persona]:
    """First occurrence wins; a later persona is dropped if its id or normalised description was seen."""
    seen_ids: set[str] = set()
    seen_texts: set[str] = set()
    kept: list[Persona] = []
    for persona in personas:
        text = normalise_description(persona.description)
        if persona.id in seen_ids or text in seen_texts:
            continue
        seen_ids.add(persona.id)
        seen_texts.add(text)
        kept.append(persona)
    return kept
