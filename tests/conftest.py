"""Suite-wide settings: nothing a test runs may reach the network (models and data come from packages
and ../shared/data), and a test never writes into the user's cache or the repository's runs/."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


import pytest  # noqa: E402  (after the offline settings above)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """Base URL (http://127.0.0.1:PORT/v1) of a real `python -m llama_cpp.server` on the embedded model."""
    from pipelines.llm.local_server import llama_cpp_server

    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    # One thread: on a busy 2-core machine llama.cpp's spinning threads slow each other down.
    with llama_cpp_server(n_threads=1, n_ctx=1024, log_path=log) as url:
        yield url
