"""filters.normalize: the batch normaliser that exact dedup uses equals the one-by-one definition."""

import random

from filters.normalize import normalize_text, normalized_batch, normalized_bytes


def test_normalisation_ignores_case_punctuation_spacing_and_unicode_form():
    assert normalize_text("Hello,  World!") == "hello world"
    assert normalize_text("ＨＥＬＬＯ\u00a0world…") == "hello world"  # NFKC folds full-width letters


def test_batch_equals_one_by_one_on_random_and_edge_texts():
    rng = random.Random(0)
    alphabet = list("ab Z9_ \t\n.,!?-'\"\x00é—\u00a0ß") + ["  "]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(5000)]
    texts += ["", " ", "  a  ", "\x00", "a\x00b", "user: Hi!\nassistant: Hello, there.", "x" * 10000]
    assert normalized_batch(texts) == [normalized_bytes(t) for t in texts]
    assert normalized_batch([]) == []
