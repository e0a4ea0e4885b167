"""Train/validation splits that near-identical samples cannot straddle.

Samples are grouped before they are split: two samples that share a persona, a source (the seed task or
document they were generated from) or a normalised first user turn land in the same group, transitively
(union-find). A group goes to validation when a stable hash of its smallest key falls below the share, so
the assignment depends on content only: the same data splits the same way in every run and on every
machine, and adding samples moves only the groups they join.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pipelines.core.sample import Sample, canonical_json

GROUP_KEYS = ("persona", "source", "prompt")
# Where a sample says what it was generated from; the first one present is its source.
SOURCE_FIELDS = ("source_id", "source", "document", "seed_id", "question")

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_text(text: str) -> str:
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def group_keys(sample: Sample, by: list[str]) -> list[str]:
    keys = []
    if "persona" in by and sample.persona:
        pid = sample.persona.get("id") if isinstance(sample.persona, dict) else None
        keys.append(f"persona:{pid if pid is not None else canonical_json(sample.persona)}")
    if "source" in by:
        for field in SOURCE_FIELDS:
            value = sample.meta.get(field)
            if value not in (None, ""):
                keys.append(f"source:{value if isinstance(value, str) else canonical_json(value)}")
                break
    if "prompt" in by:
        first_user = next((m.content for m in sample.messages if m.role == "user"), None)
        if first_user and normalise_text(first_user):
            keys.append(f"prompt:{normalise_text(first_user)}")
    return keys or [f"id:{sample.id}"]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # The smaller key stays the root, so a group's name is its smallest key whatever the order.
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo


def _unit_hash(key: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(keys_per_item: list[list[str]], validation: float, seed: int = 0) -> tuple[list[str], int]:
    """Split name per item ('train' or 'validation') and the number of groups."""
    uf = _UnionFind()
    for keys in keys_per_item:
        for k in keys[1:]:
            uf.union(keys[0], k)
        uf.find(keys[0])
    roots = [uf.find(keys[0]) for keys in keys_per_item]
    splits = ["validation" if _unit_hash(r, seed) < validation else "train" for r in roots]
    return splits, len(set(roots))

