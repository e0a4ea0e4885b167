"""Text normalisation and shingling shared by the dedup, diversity and decontamination filters: two
renderings that differ only in case, spacing, punctuation or Unicode form count as the same text."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"\w+", re.UNICODE)
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Byte table: ASCII letters, digits and "_" stay, every other ASCII byte becomes a space, bytes >= 128 (the
# inside of UTF-8 sequences) stay. bytes.translate runs in C at memory speed, several times faster than a
# Unicode regex over the whole text; dedup and decontamination run this for every sample.
_WORD_BYTES = bytes(c if (chr(c).isalnum() or c == 95) else 32 for c in range(128)) + bytes(range(128, 256))


def _non_ascii_char(m: re.Match) -> str:
    # The regex \w is exactly str.isalnum() (or "_", which is ASCII) for a single character.
    return m.group() if m.group().isalnum() else " "


def normalized_bytes(text: str) -> bytes:
    """UTF-8 of `normalize_text(text)`: NFKC, case folded, maximal runs of word characters (what the
    Unicode regex class for words matches) joined by single spaces. What exact dedup hashes."""
    if text.isascii():  # NFKC is the identity and casefold is lower() on ASCII
        text = text.lower()
    else:
        # Non-ASCII characters that are not word characters (curly quotes, dashes, NBSP) become spaces;
        # the rest of the text then splits on ASCII bytes alone.
        text = _NON_ASCII.sub(_non_ascii_char, unicodedata.normalize("NFKC", text).casefold())
    return b" ".join(text.encode("utf-8").translate(_WORD_BYTES).split())


# The batch form keeps NUL as itself: it separates the texts joined into one buffer.
_WORD_BYTES_NUL = b"\x00" + _WORD_BYTES[1:]


def normalized_batch(texts: list[str]) -> list[bytes]:
    """`[normalized_bytes(t) for t in texts]`, several times faster on many ASCII texts: they are lowered,
    encoded and translated as one buffer, and the runs of spaces are collapsed with numpy instead of
    splitting every text into word objects (which is most of the one-by-one cost). Exact dedup hashes
    every sample this way."""
    import numpy as np

    out: list[bytes | None] = [None] * len(texts)
    fast = []
    for i, t in enumerate(texts):
        if t.isascii() and "\x00" not in t:
            fast.append(t)
        else:
            out[i] = normalized_bytes(t)
    if fast:
        a = np.frombuffer("\x00".join(fast).lower().encode("ascii").translate(_WORD_BYTES_NUL), np.uint8)
        prev = np.empty_like(a)
        prev[0], prev[1:] = 0, a[:-1]
        a = a[~((a == 32) & ((prev == 32) | (prev == 0)))]  # runs of spaces -> one, none at a text's start
        nxt = np.empty_like(a)
        nxt[-1:], nxt[:-1] = 0, a[1:]
        parts = iter(a[~((a == 32) & (nxt == 0))].tobytes().split(b"\x00"))  # none at a text's end
        out = [next(parts) if o is None else o for o in out]
    return out  # type: ignore[return-value]


def words(text: str) -> list[str]:
    """The words of the text after NFKC, case folding and dropping punctuation."""
    return normalized_bytes(text).decode("utf-8").split()


def normalize_text(text: str) -> str:
    """NFKC, case-folded, punctuation as spaces, whitespace collapsed: "Hello,  World!" -> "hello world"."""
    return normalized_bytes(text).decode("utf-8")


def word_ngrams(tokens: list, n: int) -> set:
    """Distinct word n-grams joined by spaces (str or bytes, as the tokens are). A text shorter than n
    words is one shingle of all its words (so short texts still compare), and an empty text is the one
    empty shingle (so empty texts match)."""
    sep = b" " if tokens and isinstance(tokens[0], bytes) else " "
    if len(tokens) < n:
        return {sep.join(tokens)}
    if n == 1:
        return set(tokens)
    return {sep.join(g) for g in zip(*(tokens[i:] for i in range(n)))}


def char_ngrams(text: str, n: int) -> set[str]:
    """Distinct character n-grams of the normalised text (spaces included, so word boundaries count)."""
    norm = normalize_text(text)
    if len(norm) < n:
        return {norm}
    return {norm[i:i + n] for i in range(len(norm) - n + 1)}


def shingles(text: str, n: int, unit: str = "word") -> set:
    """The text's shingles: word n-grams as UTF-8 bytes (no decoding on the hot path), or character
    n-grams as str."""
    if unit == "word":
        return word_ngrams(normalized_bytes(text).split(), n)
    if unit == "char":
        return char_ngrams(text, n)
    raise ValueError(f"shingle unit must be 'word' or 'char', got {unit!r}")


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)
