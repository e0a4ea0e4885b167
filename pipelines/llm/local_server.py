"""Start and stop llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) on a GGUF,
by default the embedded Gemma 3 270M: the local server behind recipes/openai_server.yaml, the tests of the
OpenAI backend, and bench/llm.py.

    python -m pipelines.llm.local_server --port 8000          # serve the embedded model until Ctrl-C

Needs llama-cpp-python's `server` extra (fastapi, uvicorn, sse-starlette, starlette-context,
pydantic-settings).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

EMBEDDED_ALIAS = "embedded-gemma-270m"  # the tests' server: a base model, cheap completions


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(model: str | Path | None, port: int, n_threads: int = 1, n_ctx: int = 2048,
                   host: str = "127.0.0.1") -> list[str]:
    from pipelines.llm.embedded import resolve_model

    path, _ = resolve_model(str(model) if model is not None else EMBEDDED_ALIAS)
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", host, "--port", str(port),
           "--n_threads", str(n_threads), "--n_threads_batch", str(n_threads), "--n_ctx", str(n_ctx),
           "--model_alias", EMBEDDED_ALIAS if model is None else Path(str(model)).name]
    if model is None:
        # The embedded GGUF has no chat template; llama.cpp would fall back to llama-2's [INST] format,
        # which Gemma answers with an immediate end of turn.
        cmd += ["--chat_format", "gemma"]
    return cmd


def wait_ready(base_url: str, proc: subprocess.Popen | None = None, timeout_s: float = 180.0) -> None:
    """Poll GET {base_url}/models until the server answers; raise with its log tail if it died or hung."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with status {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as resp:
                json.load(resp)
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            time.sleep(0.25)
    raise TimeoutError(f"llama_cpp.server at {base_url} not ready after {timeout_s:g} s")


@contextlib.contextmanager
def llama_cpp_server(model: str | Path | None = None, port: int | None = None, n_threads: int = 1,
                     n_ctx: int = 2048, log_path: Path | None = None) -> Iterator[str]:
    """Run llama_cpp.server for the duration of the block; yields its base URL (http://127.0.0.1:PORT/v1)."""
    port = port or free_port()
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(server_command(model, port, n_threads, n_ctx), stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(base_url, proc)
        yield base_url
    finally:
        proc.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly on SIGINT
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="GGUF path or embedded model name, e.g. embedded-qwen-0.5b "
                    "(served under that name; default: the embedded Gemma 3 270M, as embedded-gemma-270m)")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--n-threads", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    ap.add_argument("--n-ctx", type=int, default=2048)
    args = ap.parse_args()
    cmd = server_command(args.model, args.port, args.n_threads, args.n_ctx)
    print(" ".join(cmd), file=sys.stderr)
    os.execv(cmd[0], cmd)  # become the server: Ctrl-C and signals go straight to it


if __name__ == "__main__":
    main()
