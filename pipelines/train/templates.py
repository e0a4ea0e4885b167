"""The LFM2 chat templates TRL ships, by Refinery dialect name.

We do not copy the templates: the reference is TRL's own file, so a test comparing our renderer with the
template compares against what the ecosystem uses, and a TRL upgrade that changes them fails that test.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

# dialect -> (template shipped with the checkpoints, the same with {% generation %} markers for training)
TEMPLATES = {
    "lfm2": ("lfm2_v2.jinja", "lfm2_v2_training.jinja"),
    "lfm2.5": ("lfm2_2_5_v2.jinja", "lfm2_2_5_v2.jinja"),  # already carries the markers
}


def _template_dir() -> Path:
    spec = importlib.util.find_spec("trl")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("trl is not installed: install the train extra (pip install -e '.[train]')")
    return Path(next(iter(spec.submodule_search_locations))) / "chat_templates"


def chat_template(dialect: str = "lfm2", training: bool = False) -> str:
    if dialect not in TEMPLATES:
        raise ValueError(f"unknown LFM2 dialect {dialect!r}; known: {', '.join(TEMPLATES)}")
    path = _template_dir() / TEMPLATES[dialect][1 if training else 0]
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: this TRL version does not ship the {dialect} template")
    return path.read_text(encoding="utf-8")
