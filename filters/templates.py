"""Prompt files of model-calling filters (filters/prompts/): Jinja2 text, YAML rubrics and examples. Their
bytes are part of the step's fingerprint, so editing a prompt recomputes the step."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

PROMPTS = Path(__file__).parent / "prompts"

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(PROMPTS)),
    undefined=jinja2.StrictUndefined,  # a missing variable is a bug, not an empty string
    autoescape=False,
)


def render(name: str, **values: Any) -> str:
    return _ENV.get_template(name).render(**values)


@cache
def load_yaml(name: str) -> Any:
    return yaml.safe_load((PROMPTS / name).read_text(encoding="utf-8"))


@cache
def template_hash(name: str) -> str:
    return hashlib.sha256((PROMPTS / name).read_bytes()).hexdigest()[:12]


def files_in(folder: str) -> list[Path]:
    return sorted((PROMPTS / folder).iterdir())
