"""Fixtures for the model-layer tests (the llama_cpp.server itself is in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def server_port(llama_server):
    return int(llama_server.rsplit(":", 1)[1].split("/")[0])
