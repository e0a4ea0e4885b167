"""Which Argilla server to talk to, and with what key.

In order: explicit arguments, then ARGILLA_API_URL + ARGILLA_API_KEY from the environment (a team's real
deployment, backed by Elasticsearch), then the local stack if one is running (`refinery review stack up`).
Nothing here depends on which search engine the server uses.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

API_KEY_HEADER = "X-Argilla-Api-Key"


class ReviewError(RuntimeError):
    """A review operation that cannot go on; the message says what to do."""


class NotFound(ReviewError):
    """The named dataset (or snapshot) does not exist: bad input rather than a failure."""


@dataclass(frozen=True)
class Connection:
    url: str
    api_key: str

    def http(self, timeout: float = 120.0):
        """An httpx client for the data plane (bulk record upserts, listing). Thread-safe."""
        import httpx

        return httpx.Client(
            base_url=self.url.rstrip("/"),
            headers={API_KEY_HEADER: self.api_key},
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        )

    def sdk(self):
        """The official argilla SDK client, for the control plane (datasets, settings, users)."""
        import argilla as rg

        return rg.Argilla(api_url=self.url, api_key=self.api_key, timeout=120)


def resolve(url: str | None = None, api_key: str | None = None, stack_dir: Path | None = None) -> Connection:
    url = url or os.environ.get("ARGILLA_API_URL")
    api_key = api_key or os.environ.get("ARGILLA_API_KEY")
    if url and api_key:
        return Connection(url.rstrip("/"), api_key)
    if url or api_key:
        raise ReviewError("set both ARGILLA_API_URL and ARGILLA_API_KEY (one of them is missing)")
    from review_ui.stack import LocalStack

    stack = LocalStack(stack_dir)
    st = stack.state
    if st is not None and stack.process("server") is not None:
        return Connection(st.url, st.api_key)
    raise ReviewError(
        "no Argilla server: set ARGILLA_API_URL and ARGILLA_API_KEY for your deployment, "
        "or start the local stack with `refinery review stack up`"
    )


def call(client, method: str, url: str, *, retry_for: float = 0.0, **kw: Any):
    """One HTTP request; 5xx answers and connection errors are retried for up to `retry_for` seconds
    (a server restarting), client errors raise at once with the server's explanation."""
    import httpx

    deadline = time.monotonic() + retry_for
    delay = 0.5
    while True:
        try:
            r = client.request(method, url, **kw)
            if r.status_code < 500:
                if r.status_code >= 400:
                    raise ReviewError(f"{method} {url}: HTTP {r.status_code}: {_detail(r)}")
                return r
            problem = f"HTTP {r.status_code}: {_detail(r)}"
        except (httpx.TransportError,) as e:
            problem = f"{type(e).__name__}: {e}"
        if time.monotonic() + delay > deadline:
            raise ReviewError(f"{method} {url}: {problem}")
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _detail(r) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:500]
    return str(body.get("detail", body))[:1000] if isinstance(body, dict) else str(body)[:1000]
