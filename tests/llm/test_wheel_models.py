"""Models carried as chunk wheels on PyPI: assembled once, verified by sha256, never imported.

The real default teacher is checked as set-up assembled it; the assembly itself is exercised on small
chunk wheels built here with the same layout (PACKAGE/data/partNN.bin), so a bad chunk can be shown to
leave nothing behind without downloading half a gigabyte per test.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import zipfile
from pathlib import Path

import pytest

from pipelines.llm.embedded import DEFAULT_MODEL, file_sha256, resolve_model
from pipelines.llm.wheel_models import WHEEL_MODELS, ModelAssemblyError, WheelModel, assemble


def _chunk_wheels(folder: Path, chunks: list[bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(chunks, 1):
        dist = f"tiny_model_part{i}"
        with zipfile.ZipFile(folder / f"{dist}-0.1.0-py3-none-any.whl", "w") as z:
            z.writestr(f"{dist}/__init__.py", "raise ImportError('never imported')\n")
            z.writestr(f"{dist}/data/part{i:02d}.bin", data)


def _model(chunks: list[bytes], sha: str | None = None) -> WheelModel:
    whole = b"".join(chunks)
    return WheelModel(name="tiny", filename="tiny.gguf", what="test", package="tiny-model-part{i}",
                      version="0.1.0", parts=len(chunks), size=len(whole),
                      sha256=sha or hashlib.sha256(whole).hexdigest())


def test_chunks_concatenate_in_order_and_verify(tmp_path):
    chunks = [b"GGUF" + bytes(range(256)) * 40, b"second" * 999, b"end"]
    _chunk_wheels(tmp_path / "wheels", chunks)
    target = tmp_path / "models" / "tiny.gguf"
    target.parent.mkdir()
    assemble(_model(chunks), target, wheel_dir=tmp_path / "wheels")
    assert target.read_bytes() == b"".join(chunks)
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny.gguf"]  # no temp files left


def test_wrong_bytes_leave_nothing_behind(tmp_path):
    chunks = [b"a" * 1000, b"b" * 10]
    _chunk_wheels(tmp_path / "wheels", chunks)
    target = tmp_path / "models" / "tiny.gguf"
    target.parent.mkdir()
    with pytest.raises(ModelAssemblyError, match="expected 1,010 bytes with sha256 0000"):
        assemble(_model(chunks, sha="0" * 64), target, wheel_dir=tmp_path / "wheels")
    assert list(target.parent.iterdir()) == []


def test_a_missing_chunk_wheel_is_one_clear_error(tmp_path):
    _chunk_wheels(tmp_path / "wheels", [b"only one"])
    target = tmp_path / "tiny.gguf"
    with pytest.raises(ModelAssemblyError, match="no wheel for tiny-model-part2==0.1.0 in "):
        assemble(_model([b"only one", b"and two"]), target, wheel_dir=tmp_path / "wheels")
    assert not target.exists()


def _resolve(name: str, out) -> None:
    path, sha = resolve_model(name)
    out.put((str(path), sha))


def test_default_teacher_is_the_verified_instruct_gguf():
    model = WHEEL_MODELS[DEFAULT_MODEL]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    # Several workers of a fresh run resolve it at once: all get the one verified file.
    procs = [ctx.Process(target=_resolve, args=(DEFAULT_MODEL, out)) for _ in range(3)]
    for p in procs:
        p.start()
    got = {out.get(timeout=600) for _ in procs}
    for p in procs:
        p.join(timeout=60)
    [(path, sha)] = got
    assert sha == model.sha256 and Path(path).stat().st_size == model.size
    assert file_sha256(Path(path)) == model.sha256
    assert Path(path).read_bytes()[:4] == b"GGUF"
