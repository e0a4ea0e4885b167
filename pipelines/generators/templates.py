"""Prompt templates as files: Jinja2 for the text, YAML for few-shot examples. Every generated sample
records which template (and its hash) produced it, so a prompt change is traceable and invalidates the
step's fingerprint (see `Step.fingerprint_files`)."""

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
    keep_trailing_newline=False,
    autoescape=False,
)


@cache
def template(name: str) -> jinja2.Template:
    return _ENV.get_template(name)


@cache
def template_hash(name: str) -> str:
    return hashlib.sha256((PROMPTS / name).read_bytes()).hexdigest()[:12]


@cache
def examples(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((PROMPTS / name).read_text(encoding="utf-8"))


def render(name: str, **values: Any) -> str:
    return template(name).render(**values)


def files_in(folder: str) -> list[Path]:
    return sorted((PROMPTS / folder).iterdir())


def derive_seed(base: int, *parts: Any) -> int:
    """A request seed from the recipe seed and the request's content, never from scheduling order."""
    h = hashlib.sha256(repr((base, *parts)).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF
