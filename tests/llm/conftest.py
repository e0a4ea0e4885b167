"""Fixtures for the model-layer tests: one real llama_cpp.server on the embedded GGUF for the session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """Base URL (http://127.0.0.1:PORT/v1) of a real `python -m llama_cpp.server` on the embedded model."""
    from pipelines.llm.local_server import llama_cpp_server

    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    # One thread: on a busy 2-core machine llama.cpp's spinning threads slow each other down.
    with llama_cpp_server(n_threads=1, n_ctx=1024, log_path=log) as url:
        yield url


@pytest.fixture(scope="session")
def server_port(llama_server):
    return int(llama_server.rsplit(":", 1)[1].split("/")[0])
