"""Text normalisation and shingling shared by the dedup, diversity and decontamination filters: two
renderings that differ only in case, spacing, punctuation or Unicode form count as the same text."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"\w+", re.UNICODE)
# ASCII fast path: letters, digits and "_" (what \w matches in ASCII) stay, every other byte becomes a space.
# bytes.translate runs in C at memory speed, several times faster than a Unicode regex; dedup and
# decontamination call this for every sample, and most text is ASCII.
_ASCII_WORD_BYTES = bytes(c if (chr(c).isalnum() or c == 95) else 32 for c in range(128)) + b" " * 128


def words(text: str) -> list[str]:
    """The words of the text after NFKC, case folding and dropping punctuation: maximal runs of word
    characters (Unicode \w)."""
    if text.isascii():  # NFKC is the identity and casefold is lower() on ASCII
        return text.lower().encode("ascii").translate(_ASCII_WORD_BYTES).decode("ascii").split()
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def normalize_text(text: str) -> str:
    """NFKC, case-folded, punctuation as spaces, whitespace collapsed: "Hello,  World!" -> "hello world"."""
    return " ".join(words(text))


def word_ngrams(tokens: list[str], n: int) -> set[str]:
    """Distinct word n-grams joined by spaces. A text shorter than n words is one shingle of all its words
    (so short texts still compare), and an empty text is the one shingle "" (so empty texts match)."""
    if len(tokens) < n:
        return {" ".join(tokens)}
    if n == 1:
        return set(tokens)
    return {" ".join(g) for g in zip(*(tokens[i:] for i in range(n)))}


def char_ngrams(text: str, n: int) -> set[str]:
    """Distinct character n-grams of the normalised text (spaces included, so word boundaries count)."""
    norm = normalize_text(text)
    if len(norm) < n:
        return {norm}
    return {norm[i:i + n] for i in range(len(norm) - n + 1)}


def shingles(text: str, n: int, unit: str = "word") -> set[str]:
    if unit == "word":
        return word_ngrams(words(text), n)
    if unit == "char":
        return char_ngrams(text, n)
    raise ValueError(f"shingle unit must be 'word' or 'char', got {unit!r}")


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)
