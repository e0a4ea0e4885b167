"""A small HTTP proxy that injects faults in front of a real server (loopback only), for the OpenAI
backend's fault-handling tests.

Faults per request: "429" (with Retry-After), "500", "400", "401", "reset" (the connection is closed with a TCP RST and
no answer), "slow" (the answer is held back `slow_s` seconds before it is forwarded), or None (forwarded
untouched). A `plan(body, attempt)` function decides, where `attempt` counts how often this exact request
body was seen before: a test can script "this request fails twice, then passes" deterministically.

One request per connection (answers carry `Connection: close`), which is all an HTTP/1.1 client needs and
keeps the proxy free of keep-alive bookkeeping. Every request is logged (body, attempt, fault, status).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

Plan = Callable[[bytes, int], "str | None"]


@dataclass
class Entry:
    body: bytes
    attempt: int
    fault: str | None
    status: int | None  # status forwarded to the client (None: connection reset)


@dataclass
class FaultProxy:
    upstream_port: int
    plan: Plan = lambda body, attempt: None
    slow_s: float = 1.0
    retry_after_s: float = 0.2
    # When set, a request without "Authorization: Bearer <api_key>" gets 401 (as a hosted API would).
    api_key: str | None = None
    port: int = 0
    log: list[Entry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._seen: Counter = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    # ---- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    # ---- one request ------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        body = await reader.readexactly(length) if length else b""
        with self._lock:
            attempt = self._seen[body]
            self._seen[body] += 1
        fault = self.plan(body, attempt) if body else None
        status: int | None
        if fault == "reset":
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN: a real "connection reset".
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            status = None
        elif fault == "401" or (self.api_key and self._bearer(head) != self.api_key):
            status = 401
            await self._reply(writer, 401, "")
        elif fault in ("400", "429", "500"):
            status = int(fault)
            await self._reply(writer, status, f"Retry-After: {self.retry_after_s}\r\n" if fault == "429" else "")
        else:
            if fault == "slow":
                await asyncio.sleep(self.slow_s)
            if fault == "slow" and reader.at_eof():  # the client timed out meanwhile: do not bother the server
                status = None
                writer.close()
            else:
                status = await self._forward(head, body, writer)
        with self._lock:
            self.log.append(Entry(body, attempt, fault, status))

    async def _forward(self, head: bytes, body: bytes, writer: asyncio.StreamWriter) -> int | None:
        lines = [ln for ln in head.split(b"\r\n") if ln and not ln.lower().startswith(b"connection:")]
        request = b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n" + body
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_writer.write(request)
        await up_writer.drain()
        response = await up_reader.read()  # upstream closes after one response (Connection: close)
        up_writer.close()
        try:
            writer.write(response)
            await self._close(writer)
        except ConnectionError:
            return None  # the client gave up (timeout) before the answer came
        try:
            return int(response.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return None

    @staticmethod
    def _bearer(head: bytes) -> str | None:
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"authorization":
                return value.strip().decode().removeprefix("Bearer ")
        return None

    async def _reply(self, writer: asyncio.StreamWriter, status: int, extra_headers: str) -> None:
        payload = b'{"error": {"message": "injected by the fault proxy"}}'
        writer.write((f"HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\n{extra_headers}"
                      f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n").encode() + payload)
        await self._close(writer)

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        try:
            await writer.drain()
        finally:
            writer.close()

    # ---- what happened ----------------------------------------------------------------------------

    def answered(self) -> Counter:
        """Request body -> how many times the real server's 200 answer reached the client."""
        with self._lock:
            return Counter(e.body for e in self.log if e.status == 200)

    def faults(self) -> Counter:
        with self._lock:
            return Counter(e.fault for e in self.log)
