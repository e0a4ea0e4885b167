"""Reading and writing samples as JSON Lines, and a synthetic source for benchmarks and smoke tests."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

from pydantic import Field

from pipelines.core.registry import register
from pipelines.core.sample import Message, Sample
from pipelines.core.step import Params, Step


class ReadJsonlParams(Params):
    path: str = Field(description="JSON Lines file of samples (the format `io.write_jsonl` writes)")


@register("io.read_jsonl")
class ReadJsonl(Step):
    kind = "source"
    Params = ReadJsonlParams

    @classmethod
    def input_paths(cls, params: dict) -> dict[tuple, Path]:
        return {("path",): Path(params["path"])}

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        path = Path(self.params.path)
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield Sample.from_dict(json.loads(line))
                except (ValueError, KeyError, TypeError) as e:
                    raise ValueError(f"{path}:{lineno}: not a sample: {e}") from None


class WriteJsonlParams(Params):
    path: str = Field("final.jsonl", description="output file; relative paths are inside the run directory")


@register("io.write_jsonl")
class WriteJsonl(Step):
    """Writes every sample it sees to one JSON Lines file (atomically) and passes them on unchanged.

    Split: each shard is encoded in parallel (keys), one task joins the pieces in input order (decide),
    and the output shards are the input shards, linked (passthrough)."""

    kind = "barrier"
    split = True
    passthrough = True
    Params = WriteJsonlParams

    def keys(self, samples: Iterator[Sample]) -> bytes:
        return "".join(s.to_json() + "\n" for s in samples).encode("utf-8")

    def decide(self, keys: list[bytes]) -> list[None]:
        path = Path(self.params.path)
        if not path.is_absolute():
            path = self.ctx.run_dir / path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            for piece in keys:
                f.write(piece)
        os.replace(tmp, path)
        return [None] * len(keys)


class SyntheticParams(Params):
    n: int = Field(ge=1, description="how many samples")
    seed: int = 0
    duplicate_rate: float = Field(0.05, ge=0.0, le=1.0, description="share of exact repeats")


_WORDS = ("data model train token answer question reason tool call persona sample filter review export "
          "dataset version small fast local city river market garden music coffee bridge winter").split()


@register("source.synthetic")
class Synthetic(Step):
    """Cheap, model-free two-turn chats with a known share of exact duplicates."""

    kind = "source"
    Params = SyntheticParams

    def run(self, samples: Iterator[Sample]) -> Iterator[Sample]:
        rng = random.Random(self.params.seed)
        for i in range(self.params.n):
            j = rng.randrange(i) if i and rng.random() < self.params.duplicate_rate else i
            words = random.Random(j).choices(_WORDS, k=12)
            yield Sample(
                kind="chat",
                messages=[
                    Message("user", f"#{j}: " + " ".join(words[:6]) + "?"),
                    Message("assistant", " ".join(words[6:]) + "."),
                ],
                provenance={"generator": "source.synthetic"},
            )
