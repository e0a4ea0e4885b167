"""Language identification with py3langid (a maintained, numpy-only fork of langid.py whose model ships
inside the wheel: offline, ~1 s to load once per process, ~10,000 short texts/s, 97 languages).
fastText's lid.176 model would need a download at run time, lingua's full models are ~100 MB."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the text's language."""
    lang, prob = _identifier().classify(text)
    return str(lang), float(prob)
