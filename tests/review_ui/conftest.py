"""One real review stack for the whole session, started and stopped with the project's own code
(`review_ui.stack.LocalStack`, what `refinery review stack up|down` runs). On a fresh machine the first
start installs argilla-server into $REFINERY_CACHE/argilla-venv and redis-server from Debian."""

from __future__ import annotations

import warnings

import pytest

from review_ui.connection import Connection
from review_ui.datasets import ensure_user
from review_ui.stack import LocalStack, free_port

WORKSPACE = "suite"
ANNOTATORS = {"ann1": "ann1-password", "ann2": "ann2-password"}


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    s = LocalStack(tmp_path_factory.mktemp("review-stack"))
    try:
        s.up(port=free_port())
        yield s
    finally:
        s.down()


@pytest.fixture(scope="session")
def conn(stack) -> Connection:
    st = stack.state
    return Connection(st.url, st.api_key)


@pytest.fixture(scope="session")
def annotators(conn) -> dict[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK warns when a looked-up user does not exist yet
        for name, password in ANNOTATORS.items():
            ensure_user(conn, name, WORKSPACE, password=password)
    return dict(ANNOTATORS)


@pytest.fixture
def owner_env(conn, monkeypatch):
    """ARGILLA_API_URL/KEY as a team would set them for a real deployment."""
    monkeypatch.setenv("ARGILLA_API_URL", conn.url)
    monkeypatch.setenv("ARGILLA_API_KEY", conn.api_key)
    return {"ARGILLA_API_URL": conn.url, "ARGILLA_API_KEY": conn.api_key}
