"""The local dataset registry: immutable, numbered versions of named datasets.

    $REFINERY_DATASETS (default ./datasets)/
      quickstart/v1/manifest.json      what the version is: origin, counts, funnel, files and their sha256
                   /README.md          dataset card; its front matter tells `datasets.load_dataset` the configs
                   /index.parquet      config, split, id, key, row_hash per row (what `diff` compares)
                   /data/sft/train-00000-of-00001.parquet, validation-..., data/preference/...

A version is built in a hidden temporary folder and renamed into place in one step, so a reader never sees
half a version, and two exporters racing for the same number cannot both win (the loser takes the next).
Files are made read-only once written; `verify` checks every file against the manifest's sha256.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.core.shards import file_sha256

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_VERSION_RE = re.compile(r"^v(\d+)$")


class DatasetNotFound(LookupError):
    pass


def default_registry() -> Path:
    return Path(os.environ.get("REFINERY_DATASETS") or "datasets")


@dataclass(frozen=True)
class VersionRef:
    name: str
    version: int
    path: Path

    @property
    def tag(self) -> str:
        return f"v{self.version}"

    def __str__(self) -> str:
        return f"{self.name}@{self.tag}"


def parse_ref(ref: str) -> tuple[str, str]:
    """'name@v3' | 'name@3' | 'name@latest' | 'name' -> (name, 'v3' | 'latest')."""
    name, _, version = ref.partition("@")
    version = version or "latest"
    if not NAME_RE.match(name):
        raise ValueError(f"bad dataset name {name!r}: use lowercase letters, digits, '.', '_' and '-'")
    if version.isdigit():
        version = f"v{int(version)}"
    if version != "latest" and not _VERSION_RE.match(version):
        raise ValueError(f"bad version {version!r} in {ref!r}: write NAME@vN, NAME@N or NAME@latest")
    return name, version


class Registry:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_registry()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = []
        for p in folder.iterdir():
            m = _VERSION_RE.match(p.name)
            if m and (p / "manifest.json").exists():
                found.append(int(m.group(1)))
        return sorted(found)

    def resolve(self, ref: str) -> VersionRef:
        name, version = parse_ref(ref)
        versions = self.versions(name)
        if not versions:
            known = self.names()
            near = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            listing = f"; datasets: {', '.join(known)}" if known else " (the registry is empty)"
            raise DatasetNotFound(f"no dataset {name!r} in {self.root}{hint}{listing}")
        number = versions[-1] if version == "latest" else int(version[1:])
        if number not in versions:
            raise DatasetNotFound(f"{name} has no version v{number}; versions: "
                                  f"{', '.join(f'v{v}' for v in versions)}")
        return VersionRef(name, number, self.root / name / f"v{number}")

    def latest(self, name: str) -> VersionRef | None:
        versions = self.versions(name)
        return VersionRef(name, versions[-1], self.root / name / f"v{versions[-1]}") if versions else None

    @staticmethod
    def manifest(ref: VersionRef) -> dict[str, Any]:
        return json.loads((ref.path / "manifest.json").read_text(encoding="utf-8"))

    def verify(self, ref: VersionRef) -> list[str]:
        """Problems with a version's files (missing, changed); empty when it is intact."""
        manifest = self.manifest(ref)
        problems = []
        for entry in manifest["files"]:
            path = ref.path / entry["path"]
            if not path.exists():
                problems.append(f"{entry['path']}: missing")
            elif file_sha256(path) != entry["sha256"]:
                problems.append(f"{entry['path']}: content changed (sha256 mismatch)")
        return problems

    def create(self, name: str, build: Callable[[Path, int], dict[str, Any]]) -> VersionRef:
        """Build the next version of `name`: `build(folder, number)` writes its files and returns the manifest
        (written last, as the commit marker); then the folder is renamed to vN atomically."""
        if not NAME_RE.match(name):
            raise ValueError(f"bad dataset name {name!r}: use lowercase letters, digits, '.', '_' and '-'")
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            number = (self.versions(name) or [0])[-1] + 1
            tmp = folder / f".tmp-v{number}-{os.getpid()}"
            if tmp.exists():
                _make_writable(tmp)
                shutil.rmtree(tmp)
            tmp.mkdir()
            try:
                manifest = build(tmp, number)
                _write_json(tmp / "manifest.json", manifest)
                _make_read_only(tmp)
                os.rename(tmp, folder / f"v{number}")  # fails if another exporter took this number
            except OSError as e:
                _make_writable(tmp)
                shutil.rmtree(tmp, ignore_errors=True)
                if (folder / f"v{number}").exists():
                    continue  # lost the race: build the next number
                raise e
            except BaseException:
                _make_writable(tmp)
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return VersionRef(name, number, folder / f"v{number}")
        raise RuntimeError(f"could not claim a version number for {name} after 100 tries")

    def copy(self, ref: VersionRef, dest: Path) -> Path:
        """Copy a version to `dest` (a folder that must not exist yet); returns it."""
        if dest.exists():
            raise FileExistsError(f"{dest} already exists")
        shutil.copytree(ref.path, dest)
        _make_writable(dest)
        return dest


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")


def _make_read_only(root: Path) -> None:
    # Discourages editing a published version in place; the manifest's sha256s catch it if someone does.
    for p in root.rglob("*"):
        if p.is_file():
            p.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def _make_writable(root: Path) -> None:
    for p in [root, *root.rglob("*")] if root.exists() else []:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
