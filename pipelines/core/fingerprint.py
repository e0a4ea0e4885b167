"""Content fingerprints: a step's output folder is named by hash(config, code version, upstream).

Keyed on content, not on position: change a parameter, the model, the step's code or anything upstream and
the step (and everything downstream of it) gets a new folder; everything else is reused as it is.
"""

from __future__ import annotations

import hashlib
import inspect
from functools import cache
from pathlib import Path
from typing import Any

from pipelines.core.sample import content_hash
from pipelines.core.shards import file_sha256

# Bump when the shard layout or the Sample serialisation changes: old run folders then stop matching.
FORMAT_VERSION = 1

# Settings that change speed but not what a step produces, so they must not invalidate finished work.
# base_url says where the model runs, not which model: `model` names the weights (see docs/llm.md).
_LLM_PERFORMANCE_KEYS = {
    "n_threads", "base_url", "api_key_env", "concurrency", "timeout_s", "max_retries", "retry_backoff_s",
    "retry_max_wait_s", "batch_size", "device", "gpu_memory_utilization", "ray_replicas",
    "price_in_per_mtok", "price_out_per_mtok", "price_per_gpu_hour", "max_total_tokens", "max_cost",
}


@cache
def code_version(cls: type) -> str:
    """Hash of the source of the step's module and of any template files it declares."""
    h = hashlib.sha256()
    files = [Path(inspect.getsourcefile(cls))]
    files += [Path(p) for p in getattr(cls, "fingerprint_files", lambda: [])()]
    for path in files:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _path_hash(path: Path) -> str:
    if path.is_file():
        return file_sha256(path)
    if path.is_dir():  # a folder of documents: its files' names and contents
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return content_hash([[str(p.relative_to(path)), file_sha256(p)] for p in files])
    return "missing"  # validation reports it before a run; kept here for fingerprints of unvalidated specs


def input_files_hash(spec: Any) -> list[list[str]] | None:
    """Content hashes of the files a step reads (a source's JSONL, a persona bank, a documents folder):
    editing one in place must invalidate the step, exactly as changing its path does."""
    paths = spec.cls.input_paths(spec.params)
    if not paths:
        return None
    return [[str(p), _path_hash(p)] for p in paths.values()]


def step_fingerprint(spec: Any, upstream: list[str], shard_size: int) -> str:
    llm = None
    if spec.llm is not None:
        llm = {k: v for k, v in spec.llm.items() if k not in _LLM_PERFORMANCE_KEYS}
    return content_hash({
        "format": FORMAT_VERSION,
        "component": spec.component,
        "code": code_version(spec.cls),
        "params": spec.params,
        "llm": llm,
        "inputs": input_files_hash(spec),
        "upstream": upstream,
        # Sources and barriers cut their output by shard_size, which fixes every downstream shard boundary.
        "shard_size": shard_size,
    })


def fingerprints(recipe: Any) -> dict[str, str]:
    fps: dict[str, str] = {}
    for name in recipe.order:  # topological, so upstream fingerprints exist already
        spec = recipe.steps[name]
        fps[name] = step_fingerprint(spec, [fps[a] for a in spec.after], recipe.shard_size)
    return fps
