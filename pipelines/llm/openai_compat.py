"""Any server that speaks OpenAI's /v1/completions and /v1/chat/completions: vLLM serve, llama.cpp's
servers, SGLang, hosted APIs.

Async (httpx) on one event loop per client, running in a background thread so that steps stay plain
synchronous generators: `generate()` hands a batch to the loop and waits. At most `concurrency` HTTP
requests are in flight per worker process. Each HTTP call is retried on 429, 408/409/425, 5xx, timeouts,
connection resets and refused connections, at most `max_retries` times, waiting Retry-After when the
server sends one and otherwise an exponential backoff with jitter (so workers that failed together do not
retry together). What is not worth retrying is not: 400/413/422 end that request (RequestRejected, a drop),
401/403/404 stop the run (AuthError). A server that stays down stops the run with
"cannot reach URL: connection refused".

The API key is read from the environment variable named by `api_key_env` when the client is built and
lives only in the HTTP client's headers: it is not part of the config dump, the model id, the cache key,
or any message we raise.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pipelines.llm.client import Completion, LLMConfig, OnResult, Request, Result
from pipelines.llm.errors import (AuthError, LLMUnavailable, RequestError, RequestRejected, RetriesExhausted,
                                  ServerUnreachable, StructuredOutputError, ToolCallError)
from pipelines.llm.single import SingleRequests
from pipelines.llm.structured import gave_up, parse_structured, request_seed, retry_seed

_RETRY_STATUS = {408, 409, 425, 429}
_AUTH_STATUS = {401, 403, 404}


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _refused(exc: BaseException) -> bool:
    """True if a connect error was a refused connection (httpx wraps it: "All connection attempts failed")."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower():
            return True
        nested = getattr(e, "exceptions", None)  # an ExceptionGroup from happy-eyeballs connects
        if nested and any(_refused(x) for x in nested):
            return True
        e = e.__cause__ or e.__context__
    return False


def _server_message(resp: Any) -> str:
    try:
        body = resp.json()
        err = body.get("error", body) if isinstance(body, dict) else body
        msg = err.get("message", err) if isinstance(err, dict) else err
    except ValueError:
        msg = resp.text
    return " ".join(str(msg).split())[:300]


class OpenAICompatClient(SingleRequests):
    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.base_url = (config.base_url or "").rstrip("/")
        # The model name identifies the weights (not base_url): moving a server keeps its cache.
        self.model_id = f"openai:{config.model}"
        self._headers = {"Content-Type": "application/json"}
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise ValueError(f"environment variable {config.api_key_env} (llm.api_key_env) is not set")
            self._headers["Authorization"] = f"Bearer {key}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._http: Any = None
        self._pid = -1
        self._lock = threading.Lock()
        self._stats: Counter = Counter(
            requests=0, model_calls=0, tokens_in=0, tokens_out=0, failures=0, retries=0)

    def __repr__(self) -> str:  # never shows headers
        return f"OpenAICompatClient({self.base_url!r}, model={self.config.model!r})"

    # ---- the event loop thread ------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None and self._pid == os.getpid():
            return self._loop
        import httpx

        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="openai-compat-loop", daemon=True)
        thread.start()
        c = self.config

        async def make_client() -> Any:
            return httpx.AsyncClient(
                headers=self._headers,
                timeout=httpx.Timeout(c.timeout_s),
                limits=httpx.Limits(max_connections=c.concurrency, max_keepalive_connections=c.concurrency),
            )

        self._http = asyncio.run_coroutine_threadsafe(make_client(), loop).result()
        self._loop, self._thread, self._pid = loop, thread, os.getpid()
        return loop

    # ---- LLMClient --------------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request], on_result: OnResult | None = None) -> list[Result]:
        loop = self._ensure_loop()
        return asyncio.run_coroutine_threadsafe(self._generate(list(requests), on_result), loop).result()

    async def _generate(self, requests: list[Request], on_result: OnResult | None) -> list[Result]:
        slots = asyncio.Semaphore(self.config.concurrency)
        results: list[Result | None] = [None] * len(requests)
        stop: list[BaseException] = []  # the first error that stops the batch; later requests never start

        async def run(j: int, req: Request) -> None:
            if stop:
                return
            try:
                res: Result = await self._request(req, slots, stop)
            except RequestError as exc:
                res = exc
            except BaseException as exc:  # LLMUnavailable, or a bug: stop the batch, raise after the rest
                stop.append(exc)
                return
            results[j] = res
            if on_result is not None:
                try:
                    on_result(j, res)
                except BaseException as exc:  # e.g. BudgetExceeded from the cache's budget guard
                    stop.append(exc)

        await asyncio.gather(*(run(j, r) for j, r in enumerate(requests)))
        if stop:
            raise stop[0]
        return results  # type: ignore[return-value]

    async def _request(self, req: Request, slots: asyncio.Semaphore, stop: list) -> list[Completion]:
        with self._lock:
            self._stats["requests"] += 1
            self._stats["model_calls"] += 1
        outs = await asyncio.gather(
            *(self._validated(req, request_seed(req.sampling.seed, i), slots, stop) for i in range(req.n)),
            return_exceptions=True)
        for o in outs:
            if isinstance(o, BaseException):
                with self._lock:
                    self._stats["failures"] += 1
                if isinstance(o, RequestError):  # count the siblings' tokens too: they were paid for
                    o.tokens_in += sum(c.tokens_in for c in outs if isinstance(c, Completion))
                    o.tokens_out += sum(c.tokens_out for c in outs if isinstance(c, Completion))
                raise o
        return outs  # type: ignore[return-value]

    async def _validated(self, req: Request, seed: int, slots: asyncio.Semaphore, stop: list) -> Completion:
        """One completion at `seed`; with a schema, bounded retries at derived seeds."""
        attempts = 1 + (self.config.structured_retries if req.json_schema is not None else 0)
        discarded_in = discarded_out = 0
        for attempt in range(attempts):
            s = seed if attempt == 0 else retry_seed(seed, attempt)
            c = await self._once(req, s, slots, stop)
            if req.json_schema is None:
                return c
            try:
                c.parsed = parse_structured(c.text, req.json_schema, c.finish_reason)
            except StructuredOutputError as exc:
                last = exc
                discarded_in += c.tokens_in
                discarded_out += c.tokens_out
                if attempt + 1 < attempts:
                    with self._lock:
                        self._stats["structured_retries"] += 1
                continue
            if attempt:
                c.extra.update(attempts=attempt + 1, discarded_tokens_in=discarded_in,
                               discarded_tokens_out=discarded_out)
            return c
        raise gave_up(last, attempts, discarded_in, discarded_out)

    async def _once(self, req: Request, seed: int, slots: asyncio.Semaphore, stop: list) -> Completion:
        body = self._body(req, seed)
        path = "/completions" if req.prompt is not None else "/chat/completions"
        t0 = time.perf_counter()
        data = await self._post(path, body, slots, stop)
        latency = time.perf_counter() - t0
        try:
            choice = data["choices"][0]
            usage = data.get("usage") or {}
        except (KeyError, IndexError, TypeError):
            raise RequestRejected(json.dumps(data)[:500], "response has no choices") from None
        c = Completion(text="", tokens_in=int(usage.get("prompt_tokens") or 0),
                       tokens_out=int(usage.get("completion_tokens") or 0), latency_s=latency,
                       finish_reason=choice.get("finish_reason") or "stop", extra={"seed": seed})
        with self._lock:
            self._stats["tokens_in"] += c.tokens_in
            self._stats["tokens_out"] += c.tokens_out
        if req.prompt is not None:
            c.text = choice.get("text") or ""
        else:
            msg = choice.get("message") or {}
            c.text = msg.get("content") or ""
            # vLLM's reasoning parsers fill reasoning_content (older) or reasoning (newer).
            c.reasoning = msg.get("reasoning_content") or msg.get("reasoning") or None
            if msg.get("tool_calls"):
                c.tool_calls = [self._tool_call(tc, c.text) for tc in msg["tool_calls"]]
        if self.config.output_parser == "lfm2":
            from pipelines.llm.lfm2_output import split_output

            text, reasoning, calls = split_output(c.text, tools_offered=bool(req.tools))
            c.text, c.reasoning = text, c.reasoning or reasoning
            c.tool_calls = (c.tool_calls or []) + (calls or []) or None
        return c

    @staticmethod
    def _tool_call(tc: dict[str, Any], text: str) -> dict[str, Any]:
        fn = tc.get("function") or {}
        args = fn.get("arguments") or "{}"
        try:
            return {"name": fn["name"], "arguments": json.loads(args) if isinstance(args, str) else args}
        except (KeyError, json.JSONDecodeError) as exc:
            raise ToolCallError(text or json.dumps(tc), f"server returned an unparseable tool call: {exc}") from None

    def _body(self, req: Request, seed: int) -> dict[str, Any]:
        s = req.sampling
        body: dict[str, Any] = {"model": self.config.model, "max_tokens": s.max_tokens,
                                "temperature": s.temperature, "top_p": s.top_p, "seed": seed}
        if s.stop:
            body["stop"] = list(s.stop)
        if req.prompt is not None:
            body["prompt"] = req.prompt
        else:
            body["messages"] = list(req.messages)
            if req.tools:
                body["tools"] = list(req.tools)
        schema, mode = req.json_schema, self.config.structured_output
        if schema is not None and mode == "json_schema":
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "output", "schema": schema, "strict": True}}
        elif schema is not None and mode == "json_object" and req.messages is not None:
            # llama-cpp-python's server reads the schema from here; its /completions takes no response_format.
            body["response_format"] = {"type": "json_object", "schema": schema}
        return body

    async def _post(self, path: str, body: dict[str, Any], slots: asyncio.Semaphore, stop: list) -> dict[str, Any]:
        import httpx

        c = self.config
        url = self.base_url + path
        problem = ""
        for attempt in range(c.max_retries + 1):
            wait = None
            try:
                async with slots:
                    if stop:  # another request stopped the batch meanwhile: do not start (or retry) this one
                        raise LLMUnavailable("batch stopped")
                    resp = await self._http.post(url, json=body)
            except httpx.ConnectError as exc:
                reason = "connect"
                problem = "connection refused" if _refused(exc) else f"connection failed: {exc}"
            except httpx.TimeoutException:
                reason, problem = "timeout", f"no answer within {c.timeout_s:g} s (llm.timeout_s)"
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                reason, problem = "reset", f"connection reset or closed mid-request ({type(exc).__name__})"
            else:
                status = resp.status_code
                if status == 200:
                    try:
                        return resp.json()
                    except ValueError:
                        reason, problem = "bad_response", "HTTP 200 with a body that is not JSON"
                elif status in _AUTH_STATUS:
                    raise AuthError(f"{url}: HTTP {status}: {_server_message(resp)} (check llm.model, "
                                    f"llm.api_key_env)")
                elif status in _RETRY_STATUS or status >= 500:
                    reason, problem = f"http_{status}", f"HTTP {status}: {_server_message(resp)}"
                    wait = _retry_after(resp.headers.get("retry-after"))
                else:
                    raise RequestRejected("", f"HTTP {status}: {_server_message(resp)}")
            if attempt == c.max_retries:
                break
            with self._lock:
                self._stats["retries"] += 1
                self._stats[f"retries_{reason}"] += 1
            if wait is None:
                # Exponential backoff with "equal jitter": half fixed, half random.
                base = min(c.retry_max_wait_s, c.retry_backoff_s * 2 ** attempt)
                wait = base / 2 + random.uniform(0, base / 2)
            await asyncio.sleep(min(wait, c.retry_max_wait_s))
        tries = f"{c.max_retries + 1} attempt{'s' * (c.max_retries > 0)}"
        if reason == "connect":
            raise ServerUnreachable(f"cannot reach {self.base_url}: {problem} ({tries}); is the server running?")
        raise RetriesExhausted(f"{url}: gave up after {tries}; last error: {problem}")

    def stats(self) -> dict[str, float]:
        with self._lock:
            return dict(self._stats)

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None or self._pid != os.getpid():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._http.aclose(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
            loop.close()
            self._http = None
