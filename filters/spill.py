"""A private, anonymous temporary file of samples for barrier steps that must see every sample before
deciding about any (semantic dedup, diversity selection): the samples wait on disk, not in memory, and are
read back in input order. The file is unlinked on creation, so a killed step leaves nothing behind."""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipelines.core.sample import Sample


class Spill:
    def __init__(self, directory: Path | None = None) -> None:
        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
        self._file = tempfile.TemporaryFile(dir=directory)
        self.count = 0

    def add(self, sample: Sample) -> None:
        # pickle: this file is written and read by the same process, and it keeps the dataclasses exact.
        pickle.dump(sample, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += 1

    def __iter__(self) -> Iterator[Sample]:
        self._file.flush()
        self._file.seek(0)
        for _ in range(self.count):
            yield pickle.load(self._file)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
